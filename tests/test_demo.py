"""`oldphoto-bench demo` on two small embedded photos with smoke checkpoints trained here: the summary table on
stdout, summary.csv against scikit-image's PSNR, the same numbers as `bench --suite embedded`, the contact
sheet built from the benchmark's cached outputs, the per-stage view, the manifest's checkpoint hashes, a
cached rerun, refused folders, missing checkpoints, the ageing sheets and --help."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from oldphoto_bench.bench import DEFAULT_METHODS
from oldphoto_bench.cli import main
from oldphoto_bench.degrade import preset_names
from oldphoto_bench.demo import CHECKPOINT_STAGES, PLACEHOLDER_GRAY, run_demo
from oldphoto_bench.train import train_stage

SMALL = ["--max-images", "2", "--max-side", "96", "--no-progress"]
CELL, PAD, LEFT, TOP = 256, 4, 110, 18  # viz.contact_sheet's layout with row and column labels


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One smoke step of every stage `ours` uses (a few seconds)."""
    root = tmp_path_factory.mktemp("runs")
    for stage in CHECKPOINT_STAGES:
        train_stage(stage, "smoke", runs=root, data="embedded", progress=False, overrides=["schedule.steps=1"])
    return root


@pytest.fixture(scope="module")
def demo(runs, tmp_path_factory):
    """The demo run once for this module (capsys is per test): (out folder, exit code, stdout)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["demo", "--out", str(out), "--checkpoints", str(runs), *SMALL])
    return out, rc, buf.getvalue()


def _csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["method"]: row for row in csv.DictReader(f)}


def _u8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _tile(sheet: Image.Image, row: int, col: int, png: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the sheet's pixels where ``png`` should be drawn, ``png`` shrunk to fit the cell as PIL does)."""
    thumb = Image.open(png).convert("RGB")
    thumb.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
    x = LEFT + PAD + col * (CELL + PAD) + (CELL - thumb.width) // 2
    y = TOP + PAD + row * (CELL + PAD) + (CELL - thumb.height) // 2
    return np.asarray(sheet.crop((x, y, x + thumb.width, y + thumb.height))), np.asarray(thumb)


def test_summary_csv_table_and_psnr_against_skimage(demo):
    out, rc, stdout = demo
    assert rc == 0
    rows = _csv(out / "summary.csv")
    assert list(rows) == list(DEFAULT_METHODS)
    names = sorted(p.stem for p in (out / "data" / "clean").glob("*.png"))
    assert names == ["astronaut", "camera"]
    for method, row in rows.items():
        assert row["n"] == "2" and math.isfinite(float(row["psnr"])), method
        folder = out / "data" / "degraded" if method == "input" else out / "cache" / method
        ref = np.mean([peak_signal_noise_ratio(_u8(out / "data" / "clean" / f"{n}.png"), _u8(folder / f"{n}.png"))
                       for n in names])
        assert float(row["psnr"]) == pytest.approx(ref, rel=1e-5), method
    lines = stdout.splitlines()
    assert any(line.startswith("| method | n | psnr") for line in lines)
    for method in DEFAULT_METHODS:
        assert any(line.startswith(f"| {method} | 2 |") for line in lines), method
    assert "did not run" not in stdout
    assert (out / "figures" / "bar_psnr.png").is_file() and (out / "summary.md").is_file()


def test_prints_what_it_could_not_compute_and_why(demo):
    """At 96 pixels MS-SSIM cannot be computed (it needs 161): the printout says so, as summary.md does, and
    names every metric summary.md lists as unavailable here (weights not fetched, a package missing)."""
    out, _, stdout = demo
    missing = stdout.split("Not computed here:", 1)[1].split("\n\n", 1)[0]
    assert "metric ms_ssim: failed for method input" in missing and "161" in missing
    notes = (out / "summary.md").read_text()
    unavailable = re.findall(r"^- metric `(\w+)` unavailable: (.+)$", notes, flags=re.MULTILINE)
    for metric, why in unavailable:
        assert f"metric {metric}: not computed: {why}" in missing, metric


def test_contact_sheet_uses_the_cached_outputs(demo):
    out, _, _ = demo
    sheet = Image.open(out / "contact_sheet.png").convert("RGB")
    assert sheet.size == (LEFT + 3 * (CELL + PAD) + PAD, TOP + 2 * (CELL + PAD) + PAD)
    for row, name in enumerate(["astronaut", "camera"]):
        for col, png in enumerate([out / "data" / "degraded", out / "cache" / "ours", out / "data" / "clean"]):
            got, want = _tile(sheet, row, col, png / f"{name}.png")
            assert np.array_equal(got, want), (name, col)
    stages = Image.open(out / "stages.png")  # input, scratch mask, global, faces, reference
    assert stages.size == (LEFT + 5 * (CELL + PAD) + PAD, TOP + CELL + 2 * PAD)


def test_manifest_records_settings_and_checkpoint_hashes(demo, runs):
    out, _, _ = demo
    m = json.loads((out / "demo_manifest.json").read_text())
    assert m["seed"] == 0 and "git_revision" in m and m["versions"]["torch"]
    assert m["config"]["max_side"] == 96 and m["config"]["max_images"] == 2
    assert m["ours"]["ran"] and m["ours"]["settings"]["with_scratch"] and m["ours"]["settings"]["faces"]
    for stage in CHECKPOINT_STAGES:
        entry = m["checkpoints"]["stages"][stage]
        data = (runs / stage / "last.pt").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        assert entry["training"]["stage"] == stage
    assert (out / m["files"]["contact_sheet"]).is_file()


def test_same_numbers_as_bench_and_cached_rerun(demo, runs, tmp_path, capsys):
    out, _, _ = demo
    assert main(["bench", "--suite", "embedded", "--out", str(tmp_path / "b"), "--checkpoints", str(runs),
                 *SMALL]) == 0
    ours, theirs = _csv(out / "summary.csv"), _csv(tmp_path / "b" / "summary.csv")
    assert list(ours) == list(theirs)
    for method in ours:
        for col, v in ours[method].items():
            if col not in ("method", "n", "note") and v:
                assert float(v) == pytest.approx(float(theirs[method][col]), rel=1e-6, abs=1e-9), (method, col)
    before = (out / "summary.csv").read_bytes()
    assert main(["demo", "--out", str(out), "--checkpoints", str(runs), *SMALL]) == 0
    assert json.loads((out / "demo_manifest.json").read_text())["ours"]["calls_this_run"] == 0
    assert (out / "summary.csv").read_bytes() == before
    capsys.readouterr()
    # another preset into the same folder is refused, and nothing there changes
    assert main(["demo", "--out", str(out), "--checkpoints", str(runs), "--preset", "light", *SMALL]) == 2
    assert "other settings" in capsys.readouterr().err
    assert (out / "summary.csv").read_bytes() == before


def test_folder_with_other_files_is_refused(runs, tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"not mine")
    assert main(["demo", "--out", str(out), "--checkpoints", str(runs), *SMALL]) == 2
    assert "holiday.jpg" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["holiday.jpg"]


def test_missing_checkpoints_ours_unavailable_rest_written(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["demo", "--out", str(out), "--checkpoints", str(tmp_path / "nothing"), "--methods", "input,ours",
               "--max-images", "1", "--max-side", "64", "--no-progress"])
    assert rc == 1
    stdout = capsys.readouterr().out
    assert "Our method did not run: missing checkpoint(s)" in stdout
    rows = _csv(out / "summary.csv")
    assert rows["ours"]["n"] == "0" and rows["ours"]["psnr"] == "" and "missing checkpoint" in rows["ours"]["note"]
    assert math.isfinite(float(rows["input"]["psnr"]))
    sheet = Image.open(out / "contact_sheet.png").convert("RGB")
    assert sheet.size == (LEFT + 3 * (CELL + PAD) + PAD, TOP + CELL + 2 * PAD)
    got, _ = _tile(sheet, 0, 1, out / "data" / "degraded" / "astronaut.png")
    assert np.all(got == round(PLACEHOLDER_GRAY * 255))
    assert not (out / "stages.png").exists()
    m = json.loads((out / "demo_manifest.json").read_text())
    assert not m["ours"]["ran"] and "missing" in m["ours"]["unavailable"]
    assert not m["checkpoints"]["stages"]["vae-a"]["present"]


def test_ageing_sheets_one_per_preset(tmp_path):
    res = run_demo(tmp_path / "out", checkpoints=tmp_path / "none", methods=["input"], max_images=2, max_side=48,
                   progress=False, ageing=True, cell=64, log=lambda s: None)
    assert res.ours is None and res.ours_reason is None
    for preset in preset_names():
        sheet = Image.open(res.files[f"ageing_{preset}"])
        assert sheet.size == (LEFT + 3 * (64 + PAD) + PAD, TOP + 2 * (64 + PAD) + PAD)
    assert "ours (not in --methods)" not in res.table and res.table.startswith("| method |")


def test_help_says_what_is_written(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    for word in ("contact_sheet.png", "summary.csv", "stages.png", "demo_manifest.json", "--suite embedded"):
        assert word in text


def test_frame_draws_a_red_border_around_each_box():
    import torch

    from oldphoto_bench.demo import _frame

    image = torch.zeros(1, 3, 20, 30)
    out = _frame(image, [[5.0, 4.0, 15.0, 12.0], [25.0, 15.0, 40.0, 30.0]], width=2)  # second box is clipped
    red = torch.tensor([1.0, 0.0, 0.0])
    expected = image.clone()
    for x0, y0, x1, y1 in ((5, 4, 15, 12), (25, 15, 30, 20)):
        border = torch.zeros(20, 30, dtype=torch.bool)
        border[y0:y1, x0:x1] = True
        border[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = False
        expected[0][:, border] = red[:, None]
    assert torch.equal(out, expected) and torch.equal(image, torch.zeros(1, 3, 20, 30))
