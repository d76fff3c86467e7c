"""The ``face`` training stage and its data: files, load_face, exact resume, determinism, test-set refusal."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from oldphoto_bench import imageio
from oldphoto_bench.cli import main
from oldphoto_bench.data import FolderSource
from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.faces import SPADEFaceGenerator, align_face, face_training_step, template_points
from oldphoto_bench.faces import dataset as face_dataset
from oldphoto_bench.faces.dataset import AlignedFaces, FaceDataset, align_antialiased
from oldphoto_bench.models import MultiscalePatchDiscriminator
from oldphoto_bench.seeding import numpy_rng, torch_generator
from oldphoto_bench.train import (
    Trainer,
    checkpoint_path,
    load_checkpoint,
    load_face,
    resolve_config,
    save_checkpoint,
)

FAST = ["--set", "schedule.steps=2", "--no-progress"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two small photos with one face each: scikit-image's astronaut at 256 px and its mirror image."""
    folder = tmp_path_factory.mktemp("photos")
    img = imageio.to_tensor(skimage.data.astronaut())
    img = F.interpolate(img, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
    imageio.save_image(img, folder / "a.png")
    imageio.save_image(img.flip(-1), folder / "b.png")
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_face_training_end_to_end(tmp_path, photos):
    runs = tmp_path / "runs"
    missing_vgg = tmp_path / "no_vgg_here"
    assert main(["train", "face", "--config", "smoke", "--data", str(photos), "--out", str(runs), *FAST,
                 "--set", "loss.vgg=10", "--set", f"loss.vgg_weights={missing_vgg}"]) == 0
    run = runs / "face"
    for name in ("last.pt", "config.yaml", "manifest.json", "log.csv", "run.log"):
        assert (run / name).is_file(), name
    rows = _rows(run / "log.csv")
    assert [r["step"] for r in rows] == ["1", "2"]
    assert {"g_l1", "g_gan", "g_fm", "g_total", "d_total"} <= set(rows[0])
    assert "g_vgg" not in rows[0]  # no weights on disk: no VGG term
    log = (run / "run.log").read_text()
    assert "VGG perceptual loss: not used" in log
    assert "faces: 2 aligned 32px faces from 2 photos" in log
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["faces"]["faces"] == 2 and manifest["vgg_perceptual"].startswith("VGG perceptual loss: not used")

    face = load_face(runs)
    assert isinstance(face, SPADEFaceGenerator) and not face.training and face.size == 32
    assert all(not p.requires_grad for p in face.parameters())
    ckpt = load_checkpoint(checkpoint_path(runs, "face"))
    for k, v in face.state_dict().items():
        assert torch.equal(v, ckpt["models"]["generator"][k])
    with torch.no_grad():
        out = face(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32) and 0 <= out.min() and out.max() <= 1

    # a second run reuses the cached crops instead of detecting again
    assert main(["train", "face", "--config", "smoke", "--data", str(photos), "--out", str(runs), *FAST,
                 "--overwrite"]) == 0
    assert "from cache" in (run / "run.log").read_text()


def test_load_face_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="oldphoto-bench train face"):
        load_face(tmp_path)
    save_checkpoint(checkpoint_path(tmp_path, "face"), {"stage": "vae-b", "specs": {}, "models": {}})
    with pytest.raises(ValueError, match="holds stage 'vae-b'"):
        load_face(tmp_path)


def test_face_resume_gives_the_same_next_loss(tmp_path, photos):
    cfg = resolve_config("smoke", "face", ["schedule.steps=4"])
    kwargs = dict(data=str(photos), progress=False, tensorboard=False)
    first = Trainer("face", cfg, tmp_path / "a", **kwargs)
    first.run(until=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    expected = first.run(until=3)[0]
    first.close()
    again = Trainer("face", cfg, tmp_path / "b", resume=True, **kwargs)
    assert again.step == 2
    got = again.run(until=3)[0]
    again.close()
    assert got == expected  # exact, every loss


def test_stage_step_matches_face_training_step(tmp_path, photos):
    """The stage's step and faces.face_training_step implement the same losses and update order."""
    cfg = resolve_config("smoke", "face")
    trainer = Trainer("face", cfg, tmp_path, data=str(photos), progress=False, tensorboard=False)
    stage = trainer.stage
    g = SPADEFaceGenerator(**{k: v for k, v in stage.specs["generator"].items() if k != "type"})
    d = MultiscalePatchDiscriminator(**{k: v for k, v in stage.specs["discriminator"].items() if k != "type"})
    g.load_state_dict(stage.models["generator"].state_dict())
    d.load_state_dict(stage.models["discriminator"].state_dict())
    lr, betas = float(cfg["optim"]["lr"]), tuple(cfg["optim"]["betas"])
    opt_g, opt_d = torch.optim.Adam(g.parameters(), lr, betas), torch.optim.Adam(d.parameters(), lr, betas)
    batch = stage.next_batch("faces")
    stage.next_batch = lambda name: batch
    got = stage.train_step(0)
    w = cfg["loss"]
    ref = face_training_step(g, d, opt_g, opt_d, batch["degraded"], batch["clean"],
                             {"l1": w["l1"], "gan": w["gan"], "fm": w["feature_matching"]})
    trainer.close()
    for k in ("g_l1", "g_gan", "g_fm", "g_total", "d_total"):
        assert got[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-6), k
    for k, v in g.state_dict().items():
        torch.testing.assert_close(stage.models["generator"].state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_face_dataset_is_deterministic_and_replayable(tmp_path, photos):
    made = FaceDataset(str(photos), size=32, seed=5, min_face=24, cache_dir=tmp_path)  # detects, writes cache
    cached = FaceDataset(str(photos), size=32, seed=5, min_face=24, cache_dir=tmp_path)  # reads the cache
    fresh = FaceDataset(str(photos), size=32, seed=5, min_face=24)  # detects again, no cache
    assert cached.faces.summary.get("cached") and not made.faces.summary.get("cached")
    assert len(made) == len(cached) == len(fresh) == 2
    for epoch in (0, 3):
        for ds in (made, cached, fresh):
            ds.set_epoch(epoch)
        for i in range(2):
            a, b, c = made[i], cached[i], fresh[i]
            for key in ("clean", "degraded", "mask"):
                assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])
            # the clean faces hold 8-bit values (the same in memory and in the PNG cache)
            assert torch.equal((a["clean"] * 255).round() / 255, a["clean"])
            replay = Synthesizer.replay(a["clean"][None], a["record"]).image
            assert torch.equal(replay[0], a["degraded"])
    made.set_epoch(0)
    first = made[0]["degraded"]
    made.set_epoch(1)
    assert not torch.equal(first, made[0]["degraded"])  # fresh degradations every epoch
    assert made.faces.names() == ["a.png#0", "b.png#0"]


def test_face_dataset_refuses_test_sets_before_reading(tmp_path, monkeypatch, capsys):
    opened = []
    monkeypatch.setattr(face_dataset, "open_source", lambda spec: opened.append(spec))
    ffhq = tmp_path / "faces" / "ffhq10"  # a copy of the FFHQ-10 test set anywhere is caught by its path
    ffhq.mkdir(parents=True)
    for spec in (str(ffhq), "embedded", f"{tmp_path},{ffhq}"):
        with pytest.raises(ValueError, match="refusing to train on a test set"):
            FaceDataset(spec, size=32)
    assert opened == []
    assert main(["train", "face", "--config", "tiny", "--data", str(ffhq), "--out", str(tmp_path / "r")]) == 2
    assert "ffhq10" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_aligned_folder_is_resized_without_detection(tmp_path, monkeypatch):
    def no_detection(*args, **kwargs):
        raise AssertionError("aligned faces must not be detected")

    monkeypatch.setattr(face_dataset, "build_detector", no_detection)
    rng = numpy_rng(0)
    arrays = [(rng.random((48, 40, 3)) * 255).astype(np.uint8), (rng.random((40, 40, 3)) * 255).astype(np.uint8)]
    for k, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"{k}.png")
    faces = AlignedFaces(FolderSource(tmp_path), size=16, aligned=True)
    assert len(faces) == 2 and faces.names() == ["0.png", "1.png"]
    for k, a in enumerate(arrays):
        side = min(a.shape[:2])
        top, left = (a.shape[0] - side) // 2, (a.shape[1] - side) // 2
        # independent reference: PIL's antialiased bilinear (triangle filter) resize of the centre square
        ref = np.asarray(Image.fromarray(a[top : top + side, left : left + side]).resize((16, 16),
                                                                                         Image.BILINEAR))
        got = imageio.to_uint8(faces[k].image)
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_antialiased_alignment_does_not_alias():
    """A 1-pixel checkerboard has mean 0.5 at every scale; shrunk 8x, the antialiased crop is close to flat
    gray while a bare bilinear warp aliases; at unit scale both crops are the same."""
    yy, xx = torch.meshgrid(torch.arange(512), torch.arange(512), indexing="ij")
    board = ((yy + xx) % 2).float().expand(1, 3, 512, 512).contiguous()
    turn = np.deg2rad(10.0)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    # the template 7.3x larger, turned by 10 degrees, centred in the photo
    points = ((template_points(32) - 15.5) * 7.3) @ rotation.T + 255.5
    smooth = align_antialiased(board, points, 32)
    aliased, _ = align_face(board, points, 32)
    assert abs(smooth.mean().item() - 0.5) < 0.01 and smooth.std().item() < 0.02
    assert aliased.std().item() > 0.1
    unit = template_points(32) + 100.0
    photo = torch.rand(1, 3, 256, 256, generator=torch_generator(0))
    torch.testing.assert_close(align_antialiased(photo, unit, 32), align_face(photo, unit, 32)[0])
