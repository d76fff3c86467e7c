"""Learned baselines and our method inside the benchmark: `train baseline NAME` and `train mapping-no-pn`
(smoke recipe) write checkpoints the methods load; exact resume; the U-Net at any size; DIP is seeded;
the inpainting baselines use the detected mask when a scratch detector exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from oldphoto_bench.bench import MethodContext, MethodInput, build_method, run_benchmark
from oldphoto_bench.imageio import save_image
from oldphoto_bench.models.baselines import DIPNet, UNetGenerator
from oldphoto_bench.seeding import numpy_rng, torch_generator
from oldphoto_bench.train import load_checkpoint, train_stage
from oldphoto_bench.train.baseline_stage import baseline_checkpoint, load_baseline

STEPS = ["schedule.steps=1"]


def _photo(h: int, w: int, seed: int) -> torch.Tensor:
    rng = numpy_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 4, 4)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One smoke step of every stage the benchmark's learned methods need."""
    root = tmp_path_factory.mktemp("runs")
    for stage in ("vae-a", "vae-b", "mapping", "mapping-no-pn", "scratch"):
        train_stage(stage, "smoke", runs=root, data="embedded", progress=False, overrides=STEPS)
    for name in ("pix2pix", "unet"):
        train_stage("baseline", "smoke", runs=root, data="embedded", progress=False, overrides=STEPS,
                    stage_args=[name])
    return root


def test_baseline_stage_writes_named_checkpoints(runs):
    for name, nets in (("pix2pix", {"generator", "discriminator"}), ("unet", {"generator"})):
        path = baseline_checkpoint(runs, name)
        assert path == runs / f"baseline-{name}" / "last.pt" and path.is_file()
        ckpt = load_checkpoint(path)
        assert ckpt["stage"] == "baseline" and ckpt["config"]["run"]["stage_args"] == [name]
        assert set(ckpt["models"]) == nets
    mapping = load_checkpoint(runs / "mapping-no-pn" / "last.pt")
    assert mapping["config"]["model"]["mapping"]["nonlocal_block"] is False


def test_baseline_stage_arguments_are_checked(tmp_path):
    for args, needle in (([], "one argument"), (["gan"], "pix2pix, unet"), (["unet", "x"], "one argument")):
        with pytest.raises((KeyError, ValueError), match=needle):
            train_stage("baseline", "smoke", runs=tmp_path, data="embedded", progress=False, overrides=STEPS,
                        stage_args=args)
    with pytest.raises(ValueError, match="nonlocal"):
        train_stage("mapping-no-pn", "smoke", runs=tmp_path, data="embedded", progress=False,
                    overrides=[*STEPS, "stages.mapping-no-pn.model.mapping.nonlocal_block=true"])


def test_baseline_resume_is_exact(tmp_path):
    kw = {"data": "embedded", "progress": False, "stage_args": ["pix2pix"]}
    train_stage("baseline", "smoke", runs=tmp_path / "a", overrides=["schedule.steps=2"], **kw)
    train_stage("baseline", "smoke", runs=tmp_path / "b", overrides=["schedule.steps=1"], **kw)
    train_stage("baseline", "smoke", runs=tmp_path / "b", overrides=["schedule.steps=2"], resume=True, **kw)
    a = load_checkpoint(baseline_checkpoint(tmp_path / "a", "pix2pix"))["models"]
    b = load_checkpoint(baseline_checkpoint(tmp_path / "b", "pix2pix"))["models"]
    for net in a:
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k}"


def test_trained_baselines_load_as_methods(runs):
    image = _photo(37, 50, 0)  # not a multiple of the U-Net's 32
    for name in ("pix2pix", "unet"):
        method = build_method(name, MethodContext(runs))
        out = method.restore(MethodInput(image, "x", 0))
        assert out.shape == image.shape and 0.0 <= out.min() and out.max() <= 1.0
        with torch.no_grad():
            direct = load_baseline(runs, name)(image).clamp(0, 1)
        assert torch.equal(out, direct)
        gray = image.mean(1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
        g = method.restore(MethodInput(gray, "g", 0))
        assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])


def test_ours_and_ablation_and_detected_masks_in_a_benchmark(runs, tmp_path):
    photos = tmp_path / "photos"
    for i in range(2):
        save_image(_photo(36, 44, i), photos / f"p{i}.png")
    result = run_benchmark(f"clean:{photos}", ["input", "ours", "ours-no-pn", "pix2pix", "unet", "nlm+inpaint"],
                           tmp_path / "out", checkpoints=runs, metrics=["psnr"], progress=False, log=lambda s: None)
    runs_by = {r.name: r for r in result.runs}
    assert all(r.available and len(r.values) == 2 for r in result.runs), {r.name: r.reason for r in result.runs}
    assert runs_by["ours"].settings["with_scratch"] and runs_by["ours"].settings["nonlocal_block"]
    assert not runs_by["ours-no-pn"].settings["nonlocal_block"]
    assert runs_by["nlm+inpaint"].settings["mask_source"] == "detected"
    a = (tmp_path / "out" / "cache" / "ours" / "p0.png").read_bytes()
    assert a != (tmp_path / "out" / "cache" / "ours-no-pn" / "p0.png").read_bytes()


def test_dip_is_seeded_and_respects_the_size():
    ctx = MethodContext(checkpoints=Path("/nonexistent"), has_masks=True)
    dip = build_method("dip", ctx, iterations=3, width=8, depth=2, input_channels=4)
    image, mask = _photo(21, 26, 1), torch.zeros(1, 1, 21, 26)
    mask[..., 5:8, :] = 1
    a = dip.restore(MethodInput(image, "x", 11, mask))
    b = dip.restore(MethodInput(image, "x", 11, mask))
    c = dip.restore(MethodInput(image, "x", 12, mask))
    assert a.shape == image.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert dip.settings["mask_source"] == "ground truth (oracle)"
    real = build_method("dip", MethodContext(checkpoints=Path("/nonexistent"), has_masks=False), iterations=1)
    assert real.settings["mask_source"] is None and "none" in real.settings["mask"]


def test_unet_generator_dropout_uses_the_given_generator():
    net = UNetGenerator(base_channels=4, max_channels=8, depth=3, dropout=0.5, init_seed=0)
    x = _photo(16, 16, 2)
    net.train()
    with pytest.raises(RuntimeError, match="generator"):
        net(x)
    net.set_generator(torch_generator(5))
    y1 = net(x)
    net.set_generator(torch_generator(5))
    assert torch.equal(y1, net(x))
    net.set_generator(torch_generator(6))
    assert not torch.equal(y1, net(x))
    net.eval()
    assert torch.equal(net(x), net(x)) and net(_photo(19, 23, 3)).shape == (1, 3, 19, 23)
    assert DIPNet(in_channels=4, width=8, depth=3)(torch.rand(1, 4, 13, 17)).shape == (1, 3, 13, 17)
