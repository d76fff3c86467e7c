"""`oldphoto-bench degrade` end to end on small folders (in-process through cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto_bench.cli import main
from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.imageio import load_image, load_mask


def _write_photos(folder: Path, n: int = 3, size=(40, 56)) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = (rng.random((*size, 3)) * 255).astype(np.uint8)
        p = folder / f"photo{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def test_degrade_folder_writes_images_masks_records(tmp_path):
    src = _write_photos(tmp_path / "in")
    gray = tmp_path / "in" / "sub" / "gray.png"
    gray.parent.mkdir()
    Image.fromarray((np.arange(35 * 21) % 256).astype(np.uint8).reshape(35, 21), mode="L").save(gray)
    out = tmp_path / "out"
    assert main(["degrade", str(tmp_path / "in"), "--out", str(out), "--preset", "paper", "--seed", "3",
                 "--no-progress"]) == 0
    lines = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert sorted(r["output"] for r in lines) == ["gray.png", "photo0.png", "photo1.png", "photo2.png"]
    for p in [*src, gray]:
        img, info = load_image(out / f"{p.stem}.png")
        clean, cinfo = load_image(p)
        assert img.shape == clean.shape  # same size as the input
        assert load_mask(out / f"{p.stem}_mask.png").shape[-2:] == clean.shape[-2:]
    assert Image.open(out / "gray.png").mode == "L"  # grayscale in, grayscale out
    assert Image.open(out / "photo0.png").mode == "RGB"
    assert (out / "manifest.json").is_file()
    # replaying a record reproduces the saved output
    rec = next(r for r in lines if r["output"] == "photo1.png")
    clean, _ = load_image(src[1])
    again = Synthesizer.replay(clean, rec)
    saved, _ = load_image(out / "photo1.png")
    assert torch.equal((again.image * 255).round(), (saved * 255).round())


def test_same_seed_same_bytes(tmp_path):
    _write_photos(tmp_path / "in", n=2)
    for name in ("a", "b"):
        assert main(["degrade", str(tmp_path / "in"), "--out", str(tmp_path / name), "--no-progress"]) == 0
    for f in ("photo0.png", "photo0_mask.png", "photo1.png"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_corrupt_file_is_reported_and_the_rest_processed(tmp_path, capsys):
    _write_photos(tmp_path / "in", n=2)
    bad = tmp_path / "in" / "broken.png"
    good = (tmp_path / "in" / "photo0.png").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["degrade", str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "notes.txt" in err
    assert (out / "photo0.png").is_file() and (out / "photo1.png").is_file()
    assert not (out / "broken.png").exists()
    assert len((out / "records.jsonl").read_text().splitlines()) == 2


def test_missing_input_exit_1_and_usage_error_exit_2(tmp_path, capsys):
    _write_photos(tmp_path / "in", n=1)
    assert main(["degrade", str(tmp_path / "in"), str(tmp_path / "nope.png"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    assert "nope.png" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["degrade", str(tmp_path / "in")])  # --out missing
    assert e.value.code == 2
    assert main(["degrade", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--preset", "nosuch"]) == 2
    assert "unstructured" in capsys.readouterr().err  # the error lists valid presets


def test_never_writes_over_inputs_and_keeps_existing(tmp_path, capsys):
    src = _write_photos(tmp_path / "in", n=2)
    before = [p.read_bytes() for p in src]
    # --out equal to the input folder: outputs would replace the inputs; refused before anything is written
    assert main(["degrade", str(tmp_path / "in"), "--out", str(tmp_path / "in"), "--no-progress"]) == 2
    assert [p.read_bytes() for p in src] == before
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(p.name for p in src)
    out = tmp_path / "out"
    assert main(["degrade", str(src[0]), "--out", str(out), "--seed", "1", "--no-progress"]) == 0
    first = (out / "photo0.png").read_bytes()
    assert main(["degrade", str(src[0]), "--out", str(out), "--seed", "2", "--no-progress"]) == 0
    assert "exists, kept" in capsys.readouterr().err
    assert (out / "photo0.png").read_bytes() == first
    assert main(["degrade", str(src[0]), "--out", str(out), "--seed", "2", "--overwrite", "--no-progress"]) == 0
    assert (out / "photo0.png").read_bytes() != first


def test_stem_collisions_get_unique_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write_photos(a, n=1)
    _write_photos(b, n=1)
    out = tmp_path / "out"
    assert main(["degrade", str(a), str(b), "--out", str(out), "--no-progress"]) == 0
    assert (out / "photo0.png").is_file() and (out / "photo0_2.png").is_file()
