"""benchmarks/publish_results.py: the README step on synthetic summaries (only the text between the markers
changes; the verdict sentence follows the numbers, including a classical baseline that beats ours), missing
data skips a step with a message, and the kodak24 and old steps end to end on smoke checkpoints (small
files only in results/, portable paths, earlier results kept when a step fails)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from oldphoto_bench.imageio import load_image, save_image, to_numpy
from oldphoto_bench.metrics import aggregate
from oldphoto_bench.seeding import numpy_rng

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import publish_results  # noqa: E402
from publish_readme import verdict  # noqa: E402

START, END = publish_results.MARKERS["table"]
FIG_START, FIG_END = publish_results.MARKERS["figure"]
README = f"""# project

Intro text.

## Results

Hand-written paragraph.

{START}
old table
{END}

{FIG_START}
old figure
{FIG_END}

## Status

Tail text.
"""


def _row(method: str, kind: str, psnr: list[float] | None, ssim: list[float] | None, note: str = "") -> dict:
    metrics = {}
    for name, vals in (("psnr", psnr), ("ssim", ssim)):
        if vals is not None:
            metrics[name] = {"kind": "per_image", **aggregate(vals).as_dict()}
    return {"method": method, "kind": kind, "n": len(psnr or []), "note": note, "seconds": 0.5,
            "metrics": metrics}


def _write_summary(results: Path, rows: list[dict]) -> Path:
    folder = results / "kodak24_paper_seed0"
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "bar_psnr.png").write_bytes(b"png")
    summary = {"settings": {"preset": "paper", "seed": 0, "device": "cpu", "checkpoints": "runs"},
               "suite": {"resize": "downscaled to 512"}, "rows": rows,
               "unavailable_metrics": {"lpips": "no weights"}}
    (folder / "summary.json").write_text(json.dumps(summary))
    publish = {"photos": 3, "command": "python benchmarks/publish_results.py",
               "checkpoints": {"path": "runs", "stages": {"vae-a": {"git_revision": "abcdef0123456789"}}}}
    (folder / "publish.json").write_text(json.dumps(publish))
    return folder


ROWS_CLASSICAL_WINS = [
    _row("input", "reference", [18.0, 20.0, 22.0], [0.5, 0.6, 0.7]),
    _row("nlm", "classical", [21.0, 22.0, 23.0], [0.6, 0.6, 0.6]),
    _row("tv", "classical", [25.0, 26.5, 25.0], [0.7, 0.7, 0.7]),
    _row("unet", "learned", [22.0, 23.0, 24.0], [0.9, 0.9, 0.9]),
    _row("ours", "ours", [24.0, 25.0, 26.0], [0.8, 0.8, 0.8]),
    _row("pix2pix", "learned", None, None, note="checkpoint runs/baseline-pix2pix/last.pt not found"),
]


def test_readme_step_rewrites_only_between_the_markers(tmp_path, capsys):
    results, readme = tmp_path / "results", tmp_path / "README.md"
    _write_summary(results, ROWS_CLASSICAL_WINS)
    readme.write_text(README)
    args = ["--only", "readme", "--results", str(results), "--readme", str(readme)]
    assert publish_results.main(args) == 0
    text = readme.read_text()
    head, tail = README.split(START)[0], README.split(FIG_END)[1]
    assert text.startswith(head + START) and text.endswith(FIG_END + tail)
    between = text.split(END)[1].split(FIG_START)[0]
    assert between == README.split(END)[1].split(FIG_START)[0]  # text between the two blocks is kept
    table = text.split(START)[1].split(END)[0]
    assert "old table" not in table and "| `tv` | classical | **25.50 ± " in table  # the best PSNR, in bold
    assert "| `unet` | learned |" in table and "**0.900" in table  # the best SSIM, in bold
    assert "`pix2pix` did not run" in table and "`abcdef0`" in table and "3 photos" in table
    assert "`lpips`" in table  # not computed here, said so
    figure = text.split(FIG_START)[1].split(FIG_END)[0]
    assert "(results/kodak24_paper_seed0/figures/bar_psnr.png)" in figure and "grid.jpg" not in figure
    assert publish_results.main(args) == 0 and readme.read_text() == text  # idempotent


def test_verdict_reports_the_baselines_that_beat_ours():
    text = verdict(ROWS_CLASSICAL_WINS)
    gain = np.mean([24.0, 25.0, 26.0]) - np.mean([18.0, 20.0, 22.0])
    assert f"gains +{gain:.2f} dB" in text and "at least the 4 dB target" in text
    assert "does not lead every classical baseline; ahead of it on PSNR `tv` 25.50 (ours 25.00)." in text
    assert "`nlm`" not in text  # nlm is behind on both
    assert "Other methods ahead of it on SSIM `unet` 0.900 (ours 0.800)." in text
    more = verdict([*ROWS_CLASSICAL_WINS, _row("bm3d", "classical", [25.0, 25.2, 25.4], [0.85, 0.85, 0.85])])
    assert ("ahead of it on PSNR `tv` 25.50, `bm3d` 25.20 (ours 25.00); on SSIM `bm3d` 0.850 (ours 0.800)."
            in more)  # best first, per metric


def test_verdict_when_ours_leads_and_when_it_did_not_run():
    rows = [_row("input", "reference", [20.0, 22.0], [0.5, 0.6]),
            _row("tv", "classical", [21.0, 22.0], [0.6, 0.6]),
            _row("nlm", "classical", [22.5, 23.0], [0.62, 0.6]),
            _row("unet", "learned", [21.0, 22.0], [0.6, 0.6]),
            _row("ours", "ours", [23.0, 24.0], [0.7, 0.7])]
    text = verdict(rows)
    assert "gains +2.50 dB" in text and "less than the 4 dB target" in text
    assert "leads every classical baseline (2) on both PSNR and SSIM" in text
    assert "No other method (`unet`) beats it" in text
    missing = [rows[0], _row("ours", "ours", None, None, note="missing checkpoint(s) runs/vae-a/last.pt")]
    expected = "`ours` has no PSNR/SSIM in this run (missing checkpoint(s) runs/vae-a/last.pt)."
    assert verdict(missing) == expected


def test_readme_markers_are_added_before_status_when_missing(tmp_path):
    results, readme = tmp_path / "results", tmp_path / "README.md"
    _write_summary(results, ROWS_CLASSICAL_WINS)
    original = "# project\n\nIntro.\n\n## Status\n\nTail.\n"
    readme.write_text(original)
    assert publish_results.main(["--only", "readme", "--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# project\n\nIntro.\n\n## Results\n") and text.endswith("## Status\n\nTail.\n")
    order = [text.index(m) for m in (START, END, FIG_START, FIG_END, "## Status")]
    assert order == sorted(order)


def test_missing_data_and_results_skip_with_a_message(tmp_path, capsys):
    results = tmp_path / "results"
    rc = publish_results.main(["--only", "kodak24,old,readme", "--shared", str(tmp_path / "nowhere"),
                               "--results", str(results), "--work", str(tmp_path / "work"),
                               "--readme", str(tmp_path / "README.md"),
                               "--checkpoints", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"skip kodak24: {tmp_path / 'nowhere' / 'clean' / 'kodak24'} not found" in err
    assert f"skip old: {tmp_path / 'nowhere' / 'old'} not found" in err
    assert "skip readme:" in err and "run the kodak24 step first" in err
    assert not results.exists() or not any(results.iterdir())


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> Path:
    from oldphoto_bench.train import train_stage

    root = tmp_path_factory.mktemp("runs")
    for stage in ("vae-a", "vae-b", "mapping", "scratch"):
        train_stage(stage, "smoke", runs=root, data="embedded", progress=False,
                    overrides=["schedule.steps=1"])
    return root


def _photo(h: int, w: int, seed: int) -> torch.Tensor:
    rng = numpy_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 4, 4)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def test_kodak24_step_publishes_small_files_and_keeps_old_results_on_failure(smoke_runs, tmp_path,
                                                                               monkeypatch, capsys):
    shared, results, work = tmp_path / "shared", tmp_path / "results", tmp_path / "work"
    for i in range(2):
        save_image(_photo(40, 56, i), shared / "clean" / "kodak24" / f"kodim0{i + 1}.png")
    args = ["--only", "kodak24", "--shared", str(shared), "--results", str(results), "--work", str(work),
            "--checkpoints", str(smoke_runs), "--max-images", "1", "--methods", "input,tv,ours",
            "--metrics", "psnr,ssim", "--no-progress"]
    assert publish_results.main(args) == 0
    out = results / "kodak24_paper_seed0"
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"summary.csv", "summary.md", "summary.json", "per_image.csv", "manifest.json", "publish.json",
            "figures/bar_psnr.png", "figures/grid.jpg"} <= names
    assert not any(n.startswith(("data/", "cache/")) for n in names)
    publish = json.loads((out / "publish.json").read_text())
    assert publish["photos"] == 1 and publish["ran"] == ["input", "tv", "ours"] and publish["seed"] == 0
    stages = publish["checkpoints"]["stages"]
    assert set(stages) == {"vae-a", "vae-b", "mapping", "scratch"}
    trained = json.loads((smoke_runs / "mapping" / "manifest.json").read_text())["git_revision"]
    assert stages["mapping"]["from"] == "manifest.json" and stages["mapping"]["git_revision"] == trained
    for name in ("summary.json", "manifest.json", "publish.json", "summary.md"):
        assert str(work) not in (out / name).read_text()
    # the published PSNR of the input against scikit-image on the aged photo of the work folder
    data = next(work.glob("kodak24_paper_seed0_n1")) / "data"
    clean, aged = (to_numpy(load_image(data / d / "kodim01.png")[0]) for d in ("clean", "degraded"))
    rows = {r["method"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows["input"]["metrics"]["psnr"]["mean"] == pytest.approx(
        peak_signal_noise_ratio(clean, aged, data_range=1.0), abs=1e-3)
    before = (out / "summary.json").read_text()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(publish_results, "copy_report", broken)
    assert publish_results.main(args) == 2
    assert "kodak24 failed (its published folder is unchanged)" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in results.iterdir()) == ["kodak24_paper_seed0"]  # no staging folder left


def test_old_step_restores_every_photo_into_a_contact_sheet(smoke_runs, tmp_path):
    shared, results = tmp_path / "shared", tmp_path / "results"
    save_image(_photo(48, 64, 1), shared / "old" / "set1" / "a.png")
    save_image(_photo(40, 40, 2), shared / "old" / "set2" / "a.png")
    (shared / "old" / "set2" / "SOURCES.md").write_text("not an image")
    rc = publish_results.main(["--only", "old", "--shared", str(shared), "--results", str(results),
                               "--work", str(tmp_path / "work"), "--checkpoints", str(smoke_runs),
                               "--old-side", "32", "--no-progress"])
    assert rc == 0
    out = results / "old_photos"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["restored"] for p in manifest["photos"]] == ["restored/set1__a.jpg", "restored/set2__a.jpg"]
    assert [p["size"] for p in manifest["photos"]] == [[48, 64], [40, 40]]
    small = load_image(out / "restored" / "set1__a.jpg")[0]
    assert tuple(small.shape[-2:]) == (24, 32)
    assert (out / "contact_sheet.jpg").is_file() and (out / "real_suite" / "summary.csv").is_file()
    assert manifest["config"]["pipeline"]["with_scratch"] is True
    for photo in manifest["photos"]:
        assert set(photo["edge_contrast_ratio"]) == {"global", "final"}
        assert all(v > 0 for v in photo["edge_contrast_ratio"].values())
    assert "Median edge contrast ratio (final / input)" in (out / "README.md").read_text()


def test_portable_paths_replace_whole_path_components_only(tmp_path):
    repo, work = publish_results.REPO, tmp_path / "work"
    text = f"{repo}/results/x {repo.parent}x/y {work}/cache/a.png {repo.parent}/shared/data {repo}"
    expected = f"./results/x {repo.parent}x/y <work>/cache/a.png ../shared/data ."
    assert publish_results.portable(text, work) == expected


def test_portable_paths_name_the_home_folder_as_tilde(tmp_path, monkeypatch):
    home = tmp_path / "home" / "someone"
    monkeypatch.setattr(publish_results.Path, "home", classmethod(lambda cls: home))
    text = f"weights not found in {home}/.cache/torch/hub/checkpoints; {home}x stays"
    expected = "weights not found in ~/.cache/torch/hub/checkpoints; " + f"{home}x stays"
    assert publish_results.portable(text, tmp_path / "work") == expected


def test_portable_paths_of_a_clone_in_a_shared_folder_name_only_the_shared_data_as_a_neighbour(tmp_path,
                                                                                              monkeypatch):
    """A clone in /tmp (or in the home folder) sits next to files that are no part of the project: only the
    shared data beside it becomes ``../shared``; other paths there, and paths that merely contain the
    clone's parent (``/var/tmp`` for ``/tmp``), stay as they are."""
    parent = tmp_path / "tmp"
    repo, work = parent / "clone", parent / "pytest-of-someone" / "work"
    monkeypatch.setattr(publish_results, "REPO", repo)
    monkeypatch.setattr(publish_results.Path, "home", classmethod(lambda cls: tmp_path / "home" / "someone"))
    other = parent / "pytest-of-someone" / "test_x0" / "photo.png"
    text = (f"clean:{parent}/shared/data/clean/kodak24 {repo}/results/a.md {work}/cache/x.png {other} "
            f"/var{parent}/y {parent}/sharedx/z")
    expected = (f"clean:../shared/data/clean/kodak24 ./results/a.md <work>/cache/x.png {other} "
                f"/var{parent}/y {parent}/sharedx/z")
    assert publish_results.portable(text, work) == expected


def test_a_second_run_while_one_publishes_stops_and_touches_nothing(tmp_path):
    results = tmp_path / "results"
    (results / "old_photos").mkdir(parents=True)
    (results / "old_photos" / "README.md").write_text("kept")
    with publish_results.exclusive(tmp_path / "work"):
        with pytest.raises(SystemExit, match="another run is publishing"):
            publish_results.main(["--only", "old", "--shared", str(tmp_path / "none"), "--results", str(results),
                                  "--work", str(tmp_path / "work"), "--no-progress"])
    assert sorted(p.name for p in results.iterdir()) == ["old_photos"]
    assert (results / "old_photos" / "README.md").read_text() == "kept"
    # released when the holder ends: the next run goes ahead (here it skips: no shared data)
    assert publish_results.main(["--only", "old", "--shared", str(tmp_path / "none"), "--results", str(results),
                                 "--work", str(tmp_path / "work"), "--no-progress"]) == 1
