"""The restore pipeline (Restorer) and `oldphoto-bench restore`, with checkpoints trained here from the smoke
recipe: sizes, grayscale, EXIF, tiled vs untiled, bad inputs, no overwriting, missing / mismatched
checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto_bench.cli import main
from oldphoto_bench.imageio import load_image, save_image, to_tensor
from oldphoto_bench.models import ScratchUNet
from oldphoto_bench.restore import MissingCheckpointsError, Restorer, default_checkpoints
from oldphoto_bench.seeding import numpy_rng, torch_generator
from oldphoto_bench.train import STAGES as TRAIN_STAGES
from oldphoto_bench.train import train_stage

STAGES = ("vae-a", "vae-b", "mapping", "scratch")


@pytest.fixture(scope="module")
def runs(smoke_runs) -> Path:
    """Smoke checkpoints of every stage, trained once per session (a few seconds; see conftest.py)."""
    return smoke_runs


def _photo(h: int, w: int, seed: int) -> torch.Tensor:
    """A smooth colour field with a few bright lines (scratch-like): (1, 3, h, w) in [0, 1]."""
    rng = numpy_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 5, 5)).astype(np.float32))
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    for _ in range(3):
        r = int(rng.integers(0, h))
        img[..., r, :] = 0.95
    return img


def _write(path: Path, image: torch.Tensor, **kw) -> Path:
    save_image(image, path, **kw)
    return path


def _report(out: Path) -> dict[str, dict]:
    return {Path(e["input"]).name: e for e in json.loads((out / "report.json").read_text())["images"]}


# ---- the Python API -------------------------------------------------------------------------------------
def test_restore_odd_size_mask_and_stages(runs):
    restorer = Restorer(runs, with_scratch=True, faces=False)
    x = _photo(131, 257, 0)
    res = restorer.restore(x)
    assert res.image.shape == x.shape and res.mask.shape == (1, 1, 131, 257)
    assert set(res.stages) == {"scratch_probability", "mask", "global", "final"}
    assert 0.0 <= float(res.image.min()) and float(res.image.max()) <= 1.0
    assert set(torch.unique(res.mask).tolist()) <= {0.0, 1.0}
    assert set(res.details["seconds"]) == {"scratch", "global", "total"}
    assert res.details["layerwise"] is False and res.details["grayscale"] is False


def test_grayscale_in_grayscale_out_and_tiny_images(runs):
    restorer = Restorer(runs, faces=False)
    gray = _photo(40, 23, 1).mean(dim=1, keepdim=True)
    for image in (gray, gray.expand(-1, 3, -1, -1)):
        out = restorer.restore(image).image
        assert out.shape == (1, 3, 40, 23)
        assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert restorer.restore(torch.rand(1, 3, 2, 2)).image.shape == (1, 3, 2, 2)  # padded to MIN_SIDE inside
    with pytest.raises(ValueError, match="at least 2x2"):
        restorer.restore(torch.rand(1, 3, 1, 1))


def test_mask_steers_the_nonlocal_block(runs):
    restorer = Restorer(runs, faces=False)
    x = _photo(64, 64, 2)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:24, :] = 1.0
    plain, masked = restorer.restore(x).image, restorer.restore(x, mask=mask).image
    # only latent cells near the mask may change: rows 20..23 -> latent rows 5; the body's convs spread it
    far = (slice(None), slice(None), slice(48, 64))
    assert not torch.allclose(plain, masked)
    diff = (plain - masked).abs()
    assert float(diff[far].max()) < float(diff[..., 16:28, :].max())


def test_tiled_equals_untiled_without_seams(runs):
    """Stage 2 (VAEs, mapping) runs layer by layer and is exact: tiled == untiled up to float rounding (1e-4).
    The detector's tiles are exact when its receptive field (radius ~15 px for depth 1) fits in the margin (16
    px for 128-px tiles); the smoke detector is swapped for such a random, strongly varying one."""
    x = _photo(150, 203, 3)
    whole = Restorer(runs, with_scratch=True, faces=False, tile=0)
    tiled = Restorer(runs, with_scratch=True, faces=False, tile=128)
    detector = ScratchUNet(depth=1, base_channels=4, max_channels=8, init_seed=0)
    g = torch_generator(5)
    with torch.no_grad():
        for p in detector.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    whole.detector = tiled.detector = detector.eval()
    a, b = whole.restore(x), tiled.restore(x)
    assert b.details["layerwise"] and not a.details["layerwise"]
    prob_a, prob_b = a.stages["scratch_probability"], b.stages["scratch_probability"]
    assert float(prob_a.std()) > 0.05  # the detector's output varies: the comparison means something
    assert float((prob_a - prob_b).abs().max()) < 1e-4
    assert 0.02 < float(a.mask.mean()) < 0.98 and torch.equal(a.mask, b.mask)
    diff = (a.image - b.image).abs()
    assert float(diff.max()) < 1e-4
    # no seam: across every tile border (tiles start every 128 - 64 = 64 px) the tiled image's step equals the
    # untiled image's step
    for x0 in range(64, 203, 64):
        step_a = (a.image[..., x0] - a.image[..., x0 - 1]).abs()
        step_b = (b.image[..., x0] - b.image[..., x0 - 1]).abs()
        assert float((step_a - step_b).abs().max()) < 1e-4


def test_faces_stage_detects_only_without_a_face_checkpoint(runs):
    pytest.importorskip("oldphoto_bench.faces")
    restorer = Restorer(runs, faces=True, face_backend="cascade")
    assert any("face" in n for n in restorer.notes)
    res = restorer.restore(_photo(96, 80, 4))
    assert torch.equal(res.stages["final"], res.stages["global"])
    assert isinstance(res.details["faces"], list) and "faces" in res.details["seconds"]


def test_faces_stage_with_a_face_checkpoint(runs, tmp_path):
    """With RUNS/face/last.pt the enhancer is loaded once and faces are enhanced and pasted back; pixels far
    from the face are untouched."""
    if "face" not in TRAIN_STAGES:
        pytest.skip("no face training stage")
    skdata = pytest.importorskip("skimage.data")
    with_face = tmp_path / "runs"
    shutil.copytree(runs, with_face)
    train_stage("face", "smoke", runs=with_face, progress=False, overrides=["schedule.steps=1"])
    restorer = Restorer(with_face, faces=True)
    assert restorer.enhancer is not None and not any("face" in n for n in restorer.notes)
    photo = to_tensor(skdata.astronaut())  # one face, in the upper middle
    out, faces = restorer.refine_faces(photo)
    assert [f["status"] for f in faces] == ["enhanced"]
    assert not torch.equal(out, photo)
    x0, y0, x1, y1 = faces[0]["box"]
    assert y1 < 400 and x1 < 420
    assert torch.equal(out[..., 430:, 430:], photo[..., 430:, 430:])


def test_missing_and_mismatched_checkpoints(runs, tmp_path):
    assert default_checkpoints().parts[-3:] == ("oldphoto_bench", "pretrained", "tiny")  # shipped (test_pretrained)
    with pytest.raises(MissingCheckpointsError) as info:
        Restorer(tmp_path / "empty")
    msg = str(info.value)
    for stage in ("vae-a", "vae-b", "mapping"):
        assert f"{stage}/last.pt" in msg and f"oldphoto-bench train {stage} " in msg
    assert "scratch" not in msg  # only with --with-scratch

    partial = tmp_path / "partial"
    shutil.copytree(runs, partial)
    shutil.rmtree(partial / "scratch")
    Restorer(partial, faces=False)  # enough without scratch handling
    with pytest.raises(MissingCheckpointsError, match=r"scratch/last.pt.*oldphoto-bench train scratch"):
        Restorer(partial, with_scratch=True)

    swapped = tmp_path / "swapped"
    shutil.copytree(runs, swapped)
    shutil.copy(swapped / "mapping" / "last.pt", swapped / "vae-a" / "last.pt")
    with pytest.raises(ValueError, match="holds stage 'mapping', not 'vae-a'"):
        Restorer(swapped, faces=False)

    other = tmp_path / "other"
    shutil.copytree(runs, other)
    train_stage(
        "vae-b",
        "smoke",
        runs=other,
        progress=False,
        overwrite=True,
        overrides=["schedule.steps=1", "model.vae.latent_channels=4"],
    )
    with pytest.raises(ValueError, match=r"vae-a/last.pt and .*vae-b/last.pt do not fit together"):
        Restorer(other, faces=False)


# ---- the command line -----------------------------------------------------------------------------------
def test_cli_sizes_gray_exif_and_report(runs, tmp_path, capsys):
    src = tmp_path / "in"
    _write(src / "odd.png", _photo(131, 257, 6))
    _write(src / "gray.png", _photo(33, 45, 7), grayscale=True)
    rotated = Image.fromarray((_photo(30, 50, 8)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape 50x30, shown portrait 30x50
    rotated.save(src / "turned.jpg", exif=exif, quality=95)
    out = tmp_path / "out"
    assert (
        main(
            [
                "restore",
                str(src),
                "--out",
                str(out),
                "--checkpoints",
                str(runs),
                "--with-scratch",
                "--no-faces",
                "--no-progress",
            ]
        )
        == 0
    )
    for name, size, mode in (
        ("odd", (257, 131), "RGB"),
        ("gray", (45, 33), "L"),
        ("turned", (30, 50), "RGB"),
    ):
        for sub in ("final", "stage1"):
            with Image.open(out / sub / f"{name}.png") as im:
                assert im.size == size and im.mode == mode, (sub, name)
        with Image.open(out / "masks" / f"{name}.png") as im:
            assert im.size == size and im.mode == "L"
    report = _report(out)
    assert set(report) == {"odd.png", "gray.png", "turned.jpg"}
    for e in report.values():
        assert e["status"] == "ok" and e["error"] is None and e["faces"] == [] and e["seconds"] > 0
        assert Path(e["output"]).is_file()
    assert report["turned.jpg"]["exif_transposed"] is True
    assert (out / "manifest.json").is_file()


def test_cli_bad_inputs_are_reported_and_skipped(runs, tmp_path, capsys):
    src = tmp_path / "mixed"
    good = _write(src / "good.png", _photo(40, 40, 9))
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    truncated = src / "truncated.png"
    _write(tmp_path / "full.png", _photo(40, 40, 10))  # under the pixel limit: fails on its data
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:200])
    (src / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(src / "one.png")
    _write(src / "big.png", _photo(60, 60, 11))  # 3600 pixels: over --max-pixels 2000
    (src / "notes.txt").write_text("not an image")  # not an image suffix: skipped with a note, not reported
    out = tmp_path / "out"
    code = main(
        [
            "restore",
            str(src),
            str(tmp_path / "missing.png"),
            "--out",
            str(out),
            "--checkpoints",
            str(runs),
            "--no-faces",
            "--no-progress",
            "--max-pixels",
            "2000",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    report = _report(out)
    assert report["good.png"]["status"] == "ok" and (out / "final" / "good.png").is_file()
    expected = {
        "corrupt.png": "not an image",
        "truncated.png": "truncated or corrupt",
        "empty.jpg": "empty",
        "one.png": "too small",
        "big.png": "too large",
        "missing.png": "no such file",
    }
    for name, problem in expected.items():
        entry = report[name]
        assert entry["status"] == "error" and problem in entry["error"] and name in entry["error"], entry
        assert entry["output"] is None and not (out / "final" / f"{Path(name).stem}.png").exists()
        assert name in err
    assert "notes.txt" not in report and "notes.txt: not an image file" in err
    assert good.read_bytes() == (tmp_path / "mixed" / "good.png").read_bytes()


def test_cli_keeps_outputs_and_never_writes_over_inputs(runs, tmp_path, capsys):
    src = tmp_path / "in"
    photo = _write(src / "a.png", _photo(36, 44, 12))
    out = tmp_path / "out"
    args = ["restore", str(src), "--out", str(out), "--checkpoints", str(runs), "--no-faces", "--no-progress"]
    assert main(args) == 0
    final = out / "final" / "a.png"
    final.write_bytes(b"user edit")  # an existing output must survive a second run
    assert main(args) == 0
    assert final.read_bytes() == b"user edit"
    assert _report(out)["a.png"]["status"] == "ok"  # the entry of the run that wrote it is kept
    assert "exists, kept" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert load_image(final)[0].shape == (1, 3, 36, 44) and _report(out)["a.png"]["status"] == "ok"

    # an input that sits where its output would go is refused before anything is written, even with --overwrite
    inside = tmp_path / "o2" / "final"
    victim = _write(inside / "b.png", _photo(20, 20, 13))
    before = victim.read_bytes()
    assert (
        main(
            [
                "restore",
                str(victim),
                "--out",
                str(tmp_path / "o2"),
                "--checkpoints",
                str(runs),
                "--no-faces",
                "--no-progress",
                "--overwrite",
            ]
        )
        == 2
    )
    assert victim.read_bytes() == before
    assert "would be written over" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o2").rglob("*")) == ["b.png", "final"]
    assert photo.is_file()


def test_cli_missing_checkpoints_exit_2(tmp_path, capsys):
    _write(tmp_path / "a.png", _photo(20, 20, 14))
    code = main(
        [
            "restore",
            str(tmp_path / "a.png"),
            "--out",
            str(tmp_path / "out"),
            "--checkpoints",
            str(tmp_path / "nothing"),
            "--with-scratch",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "nothing/scratch/last.pt" in err and "oldphoto-bench train scratch --config" in err
    assert "nothing/vae-a/last.pt" in err and "oldphoto-bench train vae-a --config" in err
    assert not (tmp_path / "out" / "final").exists()
