"""Nothing the user had is lost: inputs that collide with a command's outputs are refused before anything is
written, reruns keep what earlier runs recorded, the bench cache stays inside --out, the git lookup writes
nothing, and outputs get ordinary permissions. Every case runs the command line in-process and compares
sha256 checksums of the files before and after."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from oldphoto_bench.cli import main
from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.imageio import load_image, to_uint8
from oldphoto_bench.provenance import git_revision


def _png(path: Path, seed: int = 0, size: tuple[int, int] = (24, 32)) -> Path:
    """A small random RGB photo saved as PNG under any name (the suffix does not choose the format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path, format="PNG")
    return path


def _astronaut(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(path)
    return path


def _tree(root: Path, skip: Path | None = None) -> dict[str, str]:
    """relative path -> sha256 of every file under root (symlinks as their target text), ``skip`` left out."""
    sums = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            if skip is not None and (p == skip or skip in p.parents):
                continue
            rel = str(p.relative_to(root))
            sums[rel] = "link:" + os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return sums


def _run(argv: list[str], capsys) -> tuple[int | None, str]:
    """(exit code, stderr) of the command line run in-process; an escaping exception gives (None, traceback)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    except Exception:
        return None, traceback.format_exc()
    return code, capsys.readouterr().err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line.lower()]


# ---- inputs that collide with outputs: refused (exit 2) before anything is written ------------------------
def _degrade_named_manifest(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "d" / "manifest.json")
    return ["degrade", str(tmp / "d" / "manifest.json"), "--out", str(tmp / "d")], "manifest.json"


def _degrade_named_records(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "d" / "records.jsonl")
    return ["degrade", str(tmp / "d" / "records.jsonl"), "--out", str(tmp / "d")], "records.jsonl"


def _degrade_into_its_input_folder(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "d" / "a.png")
    return ["degrade", str(tmp / "d"), "--out", str(tmp / "d")], "a.png"


def _degrade_input_named_like_a_mask(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "src" / "a.png")
    _png(tmp / "d" / "a_mask.png", seed=1)  # the mask of a.png would be written over this photo
    return ["degrade", str(tmp / "src" / "a.png"), str(tmp / "d" / "a_mask.png"), "--out", str(tmp / "d")], \
        "a_mask.png"


def _degrade_out_is_a_link_to_the_inputs(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "src" / "a.png")
    (tmp / "link").symlink_to(tmp / "src", target_is_directory=True)
    return ["degrade", str(tmp / "src" / "a.png"), "--out", str(tmp / "link")], "a.png"


def _faces_named_faces_json(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "d" / "faces.json")
    return ["faces", str(tmp / "d" / "faces.json"), "--out", str(tmp / "d"), "--backend", "cascade"], "faces.json"


def _faces_named_manifest(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _png(tmp / "d" / "manifest.json")
    return ["faces", str(tmp / "d" / "manifest.json"), "--out", str(tmp / "d"), "--backend", "cascade"], \
        "manifest.json"


def _faces_input_named_like_a_crop(tmp: Path, runs: Path) -> tuple[list[str], str]:
    _astronaut(tmp / "d" / "p.png")
    _png(tmp / "d" / "p_face0.png")  # p.png's first crop would be written over this photo
    return ["faces", str(tmp / "d"), "--out", str(tmp / "d"), "--backend", "cascade"], "p_face0.png"


def _restore(tmp: Path, runs: Path, inputs: list[Path], out: Path, *extra: str) -> list[str]:
    return ["restore", *map(str, inputs), "--out", str(out), "--checkpoints", str(runs), "--no-faces",
            "--no-progress", *extra]


def _restore_named_report(tmp: Path, runs: Path) -> tuple[list[str], str]:
    return _restore(tmp, runs, [_png(tmp / "d" / "report.json")], tmp / "d"), "report.json"


def _restore_named_manifest(tmp: Path, runs: Path) -> tuple[list[str], str]:
    return _restore(tmp, runs, [_png(tmp / "d" / "manifest.json")], tmp / "d"), "manifest.json"


def _restore_input_in_final(tmp: Path, runs: Path) -> tuple[list[str], str]:
    return _restore(tmp, runs, [_png(tmp / "d" / "final" / "a.png")], tmp / "d", "--overwrite"), "a.png"


def _restore_input_in_masks(tmp: Path, runs: Path) -> tuple[list[str], str]:
    return _restore(tmp, runs, [_png(tmp / "d" / "masks" / "a.png")], tmp / "d", "--with-scratch"), "a.png"


COLLISIONS: dict[str, Callable[[Path, Path], tuple[list[str], str]]] = {
    "degrade-input-named-manifest.json": _degrade_named_manifest,
    "degrade-input-named-records.jsonl": _degrade_named_records,
    "degrade-into-its-input-folder": _degrade_into_its_input_folder,
    "degrade-input-named-like-a-mask": _degrade_input_named_like_a_mask,
    "degrade-out-is-a-link-to-the-inputs": _degrade_out_is_a_link_to_the_inputs,
    "faces-input-named-faces.json": _faces_named_faces_json,
    "faces-input-named-manifest.json": _faces_named_manifest,
    "faces-input-named-like-a-crop": _faces_input_named_like_a_crop,
    "restore-input-named-report.json": _restore_named_report,
    "restore-input-named-manifest.json": _restore_named_manifest,
    "restore-input-in-final": _restore_input_in_final,
    "restore-input-in-masks": _restore_input_in_masks,
}


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_an_input_among_the_outputs_is_refused_before_anything_is_written(case, tmp_path, smoke_runs, capsys):
    argv, name = COLLISIONS[case](tmp_path, smoke_runs)
    before = _tree(tmp_path)
    code, err = _run(argv, capsys)
    assert "Traceback" not in err
    assert code == 2, err
    lines = _error_lines(err)
    assert len(lines) == 1 and name in lines[0] and "--out" in lines[0], err
    assert _tree(tmp_path) == before  # the inputs and everything else unchanged, nothing added


# ---- an existing output file that is not ours: refused (exit 2), never replaced -----------------------------
def _not_ours(name: str, data: bytes, command: Callable[[Path, Path], list[str]]):
    def setup(tmp: Path, runs: Path) -> tuple[list[str], str]:
        (tmp / "d").mkdir(parents=True, exist_ok=True)
        (tmp / "d" / name).write_bytes(data)
        return command(tmp, runs), name
    return setup


def _degrade_src(tmp: Path, runs: Path) -> list[str]:
    return ["degrade", str(_png(tmp / "src" / "a.png")), "--out", str(tmp / "d"), "--no-progress"]


def _faces_src(tmp: Path, runs: Path) -> list[str]:
    return ["faces", str(_png(tmp / "src" / "a.png")), "--out", str(tmp / "d"), "--backend", "cascade"]


def _restore_src(tmp: Path, runs: Path) -> list[str]:
    return _restore(tmp, runs, [_png(tmp / "src" / "a.png")], tmp / "d")


NOT_OURS = {
    "degrade-manifest.json-of-the-user": _not_ours("manifest.json", b"my notes", _degrade_src),
    "degrade-records.jsonl-not-text": _not_ours("records.jsonl", b"\xff\xfe\x00binary", _degrade_src),
    "faces-faces.json-of-the-user": _not_ours("faces.json", b"[1, 2]", _faces_src),
    "restore-report.json-of-the-user": _not_ours("report.json", b"{not json", _restore_src),
}


@pytest.mark.parametrize("case", list(NOT_OURS))
def test_an_output_file_that_is_not_ours_is_refused_and_kept(case, tmp_path, smoke_runs, capsys):
    argv, name = NOT_OURS[case](tmp_path, smoke_runs)
    before = _tree(tmp_path)
    code, err = _run(argv, capsys)
    assert "Traceback" not in err
    assert code == 2, err
    lines = _error_lines(err)
    assert len(lines) == 1 and name in lines[0] and "--out" in lines[0], err
    assert _tree(tmp_path) == before


# ---- reruns keep what earlier runs recorded ---------------------------------------------------------------
def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def _manifest_seeds(out: Path) -> list[int | None]:
    """Seeds of every run recorded in OUT/manifest.json, the earliest first."""
    m = json.loads((out / "manifest.json").read_text())
    return [r["seed"] for r in m.get("earlier_runs", [])] + [m["seed"]]


def test_degrade_rerun_on_a_subset_keeps_every_record_and_manifest(tmp_path, capsys):
    src = [_png(tmp_path / "src" / f"p{i}.png", seed=i) for i in range(3)]
    out = tmp_path / "out"
    assert _run(["degrade", str(tmp_path / "src"), "--out", str(out), "--no-progress"], capsys)[0] == 0
    first = _tree(out)
    first.pop("manifest.json")
    code, err = _run(["degrade", str(src[0]), "--out", str(out), "--seed", "5", "--no-progress"], capsys)
    assert code == 0 and "Traceback" not in err
    assert sorted(r["output"] for r in _records(out)) == ["p0.png", "p1.png", "p2.png"]
    assert _manifest_seeds(out) == [0, 5]
    assert {k: v for k, v in _tree(out).items() if k != "manifest.json"} == first


def test_degrade_overwrite_leaves_one_record_per_image_that_replays(tmp_path, capsys):
    src = [_png(tmp_path / "src" / f"p{i}.png", seed=i) for i in range(2)]
    out = tmp_path / "out"
    for extra in ([], ["--seed", "7", "--overwrite"]):
        assert _run(["degrade", str(tmp_path / "src"), "--out", str(out), "--no-progress", *extra], capsys)[0] == 0
    records = _records(out)
    assert sorted(r["output"] for r in records) == ["p0.png", "p1.png"]
    for rec, path in zip(sorted(records, key=lambda r: r["output"]), src, strict=True):
        again = Synthesizer.replay(load_image(path)[0], rec)
        with Image.open(out / rec["output"]) as saved:  # the bytes' pixels, quantised as the file was
            assert np.array_equal(to_uint8(again.image), np.asarray(saved))


def test_degrade_rerun_records_outputs_found_without_a_record_only_when_they_match(tmp_path, capsys):
    src = [_png(tmp_path / "src" / f"p{i}.png", seed=i) for i in range(3)]
    out = tmp_path / "out"
    assert _run(["degrade", str(tmp_path / "src"), "--out", str(out), "--no-progress"], capsys)[0] == 0
    (out / "records.jsonl").write_text("")  # images and masks without records (an older version, stopped)
    (out / "p1_mask.png").unlink()
    _png(out / "p2.png", seed=9)  # a file of the user that happens to have an output's name
    before = _tree(out)
    code, err = _run(["degrade", str(tmp_path / "src"), "--out", str(out), "--no-progress"], capsys)
    assert code == 0 and "Traceback" not in err
    assert "p2.png exists without a record" in err
    assert sorted(r["output"] for r in _records(out)) == ["p0.png", "p1.png"]
    after = _tree(out)
    assert after["p2.png"] == before["p2.png"] and after["p0.png"] == before["p0.png"]
    for rec in _records(out):  # the records describe the files that were found
        again = Synthesizer.replay(load_image(src[int(rec["output"][1])])[0], rec)
        with Image.open(out / rec["output"]) as saved, Image.open(out / rec["mask"]) as mask:
            assert np.array_equal(to_uint8(again.image), np.asarray(saved))
            assert np.array_equal(again.mask[0, 0].numpy(), np.asarray(mask) > 0)


def _report(out: Path) -> dict[str, dict]:
    return {Path(e["input"]).name: e for e in json.loads((out / "report.json").read_text())["images"]}


def test_restore_rerun_on_a_subset_keeps_the_others_report_entries(tmp_path, smoke_runs, capsys):
    a, b = _png(tmp_path / "src" / "a.png"), _png(tmp_path / "src" / "b.png", seed=1)
    out = tmp_path / "out"
    assert _run(_restore(tmp_path, smoke_runs, [a, b], out), capsys)[0] == 0
    first = _report(out)
    code, err = _run(_restore(tmp_path, smoke_runs, [a], out), capsys)
    assert code == 0 and "Traceback" not in err
    again = _report(out)
    assert set(again) == {"a.png", "b.png"}
    assert again["b.png"] == first["b.png"] and again["a.png"]["output"] == first["a.png"]["output"]
    assert len(_manifest_seeds(out)) == 2


def test_restore_finishes_an_image_whose_final_output_is_missing(tmp_path, smoke_runs, capsys):
    a = _png(tmp_path / "src" / "a.png")
    out = tmp_path / "out"
    assert _run(_restore(tmp_path, smoke_runs, [a], out), capsys)[0] == 0
    (out / "final" / "a.png").unlink()  # as if stopped between the global restoration and the final write
    (out / "report.json").unlink()
    code, err = _run(_restore(tmp_path, smoke_runs, [a], out), capsys)
    assert code == 0 and "Traceback" not in err
    assert _report(out)["a.png"]["status"] == "ok" and (out / "final" / "a.png").is_file()


def test_faces_rerun_keeps_crops_and_faces_json_unless_overwrite(tmp_path, capsys):
    astro = _astronaut(tmp_path / "src" / "astro.png")
    plain = _png(tmp_path / "src" / "plain.png", seed=3)
    out = tmp_path / "out"
    args = ["faces", "--out", str(out), "--backend", "cascade"]
    assert _run([*args[:1], str(astro), str(plain), *args[1:], "--size", "48"], capsys)[0] == 0
    first = _tree(out)
    first.pop("manifest.json")
    assert Image.open(out / "astro_face0.png").size == (48, 48)
    code, err = _run([*args[:1], str(astro), *args[1:], "--size", "64"], capsys)
    assert code == 0 and "kept" in err and "Traceback" not in err
    assert {k: v for k, v in _tree(out).items() if k != "manifest.json"} == first  # crops and faces.json kept
    code, err = _run([*args[:1], str(astro), *args[1:], "--size", "64", "--overwrite"], capsys)
    assert code == 0, err
    assert Image.open(out / "astro_face0.png").size == (64, 64)
    report = json.loads((out / "faces.json").read_text())
    assert sorted(Path(e["input"]).name for e in report["images"]) == ["astro.png", "plain.png"]
    assert len(_manifest_seeds(out)) == 3


# ---- nothing outside --out is written ---------------------------------------------------------------------
def test_bench_cache_does_not_follow_names_out_of_out(tmp_path, capsys):
    photos = tmp_path / "photos"
    for i in range(2):
        _png(photos / f"p{i}.png", seed=i, size=(32, 32))
    out = tmp_path / "out"
    argv = ["bench", "--suite", f"clean:{photos}", "--methods", "input", "--metrics", "psnr", "--max-side", "32",
            "--no-progress", "--out", str(out)]
    assert _run(argv, capsys)[0] == 0
    index = out / "data" / "suite.json"
    saved = json.loads(index.read_text())
    saved["items"][0]["name"] = "../../../esc/e"
    index.write_text(json.dumps(saved))
    shutil.copy(out / "data" / "degraded" / "p0.png", _png(tmp_path / "esc" / "e.png"))  # so it looks complete
    before = _tree(tmp_path, skip=out)
    code, err = _run(argv, capsys)
    assert "Traceback" not in err
    assert code == 2 and "suite.json" in err, err
    assert _tree(tmp_path, skip=out) == before


def test_git_revision_writes_nothing_in_the_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        if cmd[0] == "add":
            (repo / "f.txt").write_text("x")
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True)
    os.utime(repo / "f.txt", (1, 1))  # a stale index entry: a plain `git status` would refresh the index
    before = _tree(repo / ".git")
    rev = git_revision(repo)
    assert rev is not None and len(rev.split("-")[0]) == 40
    assert _tree(repo / ".git") == before and not (repo / ".git" / "index.lock").exists()


# ---- ordinary permissions ---------------------------------------------------------------------------------
def test_outputs_get_ordinary_permissions(tmp_path, smoke_runs, capsys):
    mask = os.umask(0)
    os.umask(mask)
    usual = 0o666 & ~mask
    src = _png(tmp_path / "src" / "a.png")
    assert _run(["degrade", str(src), "--out", str(tmp_path / "deg"), "--no-progress"], capsys)[0] == 0
    assert _run(_restore(tmp_path, smoke_runs, [src], tmp_path / "res"), capsys)[0] == 0
    assert _run(["faces", str(src), "--out", str(tmp_path / "fac"), "--backend", "cascade"], capsys)[0] == 0
    files = [p for d in ("deg", "res", "fac") for p in (tmp_path / d).rglob("*") if p.is_file()]
    files.append(smoke_runs / "vae-a" / "last.pt")
    modes = {str(p): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(usual)}, modes
