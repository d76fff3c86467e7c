"""Bad inputs and file-system trouble on the command line: one clear line, the documented exit code (1: some
inputs failed, the others were processed; 2: usage error), never a traceback, and nothing changed outside
``--out`` (nor among the inputs), checked with checksums of the whole temporary tree before and after.

Every case runs ``oldphoto_bench.cli.main`` in-process, in a temporary working folder (so that a stray
write into the current folder is caught too). Permission cases run for real wherever permissions are
enforced (a normal user); for root, who may read and write anything, they are skipped, and the
"-refused-by-the-os" cases reach the same code paths by making the file-system calls on the chosen paths
fail with ``PermissionError``.
"""

from __future__ import annotations

import argparse
import builtins
import errno
import hashlib
import io
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto_bench.cli import main


def _permissions_enforced() -> bool:
    """False for root (or any process allowed to ignore file modes): chmod cannot lock it out."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        locked = Path(d) / "locked"
        locked.mkdir(mode=0o500)
        try:
            (locked / "x").touch()
        except PermissionError:
            return True
        finally:
            locked.chmod(0o700)
    return False


PERMISSIONS_ENFORCED = _permissions_enforced()
SHIPPED = Path(__file__).resolve().parents[1] / "oldphoto_bench" / "pretrained" / "tiny"


def png(path: Path, size: tuple[int, int] = (32, 40), seed: int = 0) -> Path:
    """A small random RGB PNG (height, width)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


_REAL_OPEN, _REAL_SCANDIR = io.open, os.scandir  # checksums read through the OS fakes of `deny`


def checksums(root: Path, skip: Path | None = None) -> dict[str, str]:
    """sha256 of every file (and the target of every link) under ``root``, except under ``skip``."""
    out = {}
    try:
        with _REAL_SCANDIR(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError:
        return {"": "unreadable folder"}
    for e in entries:
        p = Path(e.path)
        key = e.name
        if p == skip:
            continue
        try:
            if e.is_symlink():
                out[key] = "link:" + os.readlink(p)
            elif e.is_dir():
                out[key + "/"] = "dir"
                out.update({f"{key}/{k}": v for k, v in checksums(p, skip).items()})
            else:
                with _REAL_OPEN(p, "rb") as f:
                    out[key] = hashlib.sha256(f.read()).hexdigest()
        except PermissionError:  # a locked folder's entries: listed, not readable
            out[key] = "unreadable"
    return out


def deny(monkeypatch, locked: Path, write_only: bool = False) -> None:
    """Make the OS refuse access to anything under ``locked`` (writes only, or everything), even for root."""
    locked = str(locked)

    def under(p) -> bool:
        try:
            s = os.fsdecode(os.path.abspath(p))
        except TypeError:  # a file descriptor
            return False
        return s == locked or s.startswith(locked + os.sep)

    def refuse(p):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(p))

    real_open, real_os_open, real_mkdir, real_scandir = builtins.open, os.open, os.mkdir, os.scandir
    real_access = os.access

    def fake_open(p, mode="r", *a, **k):
        if under(p) and (not write_only or any(c in mode for c in "wax+")):
            refuse(p)
        return real_open(p, mode, *a, **k)

    def fake_os_open(p, flags, *a, **k):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if under(p) and (not write_only or writing):
            refuse(p)
        return real_os_open(p, flags, *a, **k)

    def fake_mkdir(p, *a, **k):
        if under(p) and os.path.abspath(p) != locked:
            refuse(p)
        return real_mkdir(p, *a, **k)

    def fake_scandir(p="."):
        if under(p) and not write_only:
            refuse(p)
        return real_scandir(p)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)  # pathlib's read_text / write_text
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    def fake_access(p, mode, *a, **k):
        if under(p) and (not write_only or mode & os.W_OK):
            return False
        return real_access(p, mode, *a, **k)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    monkeypatch.setattr(os, "access", fake_access)


@dataclass
class Case:
    """``setup(tmp, monkeypatch) -> argv``; the command must exit with ``code`` and print a line holding every
    string of ``needles`` (``{tmp}`` is replaced by the temporary folder); ``writes``: the folder (relative
    to tmp) that may change, None when nothing may; ``after(tmp)`` checks more."""

    name: str
    setup: Callable[[Path, pytest.MonkeyPatch], list[str]]
    code: int
    needles: tuple[str, ...]
    writes: str | None = None
    after: Callable[[Path], None] | None = None
    root_skip: bool = False  # real permissions: meaningless where they are not enforced (root)
    marks: tuple = field(default_factory=tuple)


# ---- setups -------------------------------------------------------------------------------------------------
def _folder_with_dangling_link(tmp: Path) -> Path:
    png(tmp / "in" / "a.png")
    (tmp / "in" / "gone.png").symlink_to(tmp / "nowhere.png")
    return tmp / "in"


def degrade_dangling(tmp, mp):
    return ["degrade", str(_folder_with_dangling_link(tmp)), "--out", str(tmp / "out"), "--no-progress"]


def faces_dangling(tmp, mp):
    return ["faces", str(_folder_with_dangling_link(tmp)), "--out", str(tmp / "out"), "--backend", "cascade"]


def restore_dangling(tmp, mp):
    return ["restore", str(_folder_with_dangling_link(tmp)), "--out", str(tmp / "out"), "--no-faces",
            "--no-progress"]


def degrade_locked_folder_real(tmp, mp):
    png(tmp / "in" / "a.png")
    png(tmp / "in" / "locked" / "b.png", seed=1)
    (tmp / "in" / "locked").chmod(0o600)  # readable, not searchable
    return ["degrade", str(tmp / "in"), "--out", str(tmp / "out"), "--no-progress"]


def degrade_locked_folder(tmp, mp):
    png(tmp / "in" / "a.png")
    png(tmp / "in" / "locked" / "b.png", seed=1)
    deny(mp, tmp / "in" / "locked")
    return ["degrade", str(tmp / "in"), "--out", str(tmp / "out"), "--no-progress"]


def degrade_file_in_locked_folder_real(tmp, mp):
    png(tmp / "in" / "a.png")
    png(tmp / "locked" / "b.png", seed=1)
    (tmp / "locked").chmod(0o600)
    return ["degrade", str(tmp / "in" / "a.png"), str(tmp / "locked" / "b.png"), "--out", str(tmp / "out"),
            "--no-progress"]


def degrade_unreadable_file(tmp, mp):
    png(tmp / "in" / "a.png")
    png(tmp / "in" / "secret.png", seed=1)
    deny(mp, tmp / "in" / "secret.png")
    return ["degrade", str(tmp / "in"), "--out", str(tmp / "out"), "--no-progress"]


def _out_is_file(command: list[str]):
    def setup(tmp, mp):
        png(tmp / "in" / "a.png")
        (tmp / "taken").write_text("a file, not a folder\n")
        return [c.format(tmp=tmp) for c in command] + ["--out", str(tmp / "taken")]
    return setup


def _out_below_file(command: list[str]):
    def setup(tmp, mp):
        png(tmp / "in" / "a.png")
        (tmp / "taken").write_text("a file, not a folder\n")
        return [c.format(tmp=tmp) for c in command] + ["--out", str(tmp / "taken" / "sub")]
    return setup


def _out_not_writable(command: list[str], real: bool):
    def setup(tmp, mp):
        png(tmp / "in" / "a.png")
        (tmp / "ro").mkdir()
        if real:
            (tmp / "ro").chmod(0o555)
        else:
            deny(mp, tmp / "ro", write_only=True)
        return [c.format(tmp=tmp) for c in command] + ["--out", str(tmp / "ro" / "out")]
    return setup


DEGRADE = ["degrade", "{tmp}/in", "--no-progress"]
FACES = ["faces", "{tmp}/in", "--backend", "cascade"]
RESTORE = ["restore", "{tmp}/in", "--no-faces", "--no-progress"]
BENCH = ["bench", "--suite", "clean:{tmp}/in", "--methods", "input", "--metrics", "psnr", "--no-progress"]
GAP = ["latent-gap", "--checkpoints", str(SHIPPED), "--real", "{tmp}/in", "--data", "{tmp}/in", "--size", "32"]
DEMO = ["demo", "--max-images", "1", "--methods", "input", "--no-progress"]
TRAIN = ["train", "vae-b", "--config", "smoke", "--data", "{tmp}/in", "--no-progress"]


def train_set(value: str):
    def setup(tmp, mp):
        for i in range(2):
            png(tmp / "in" / f"p{i}.png", (48, 48), seed=i)
        return ["train", "vae-b", "--config", "smoke", "--data", str(tmp / "in"), "--out", str(tmp / "runs"),
                "--set", value, "--no-progress"]
    return setup


def _smoke_run(tmp: Path) -> list[str]:
    for i in range(2):
        png(tmp / "in" / f"p{i}.png", (48, 48), seed=i)
    argv = ["train", "vae-b", "--config", "smoke", "--data", str(tmp / "in"), "--out", str(tmp / "runs"),
            "--no-progress"]
    assert main(argv) == 0
    return argv


def resume_changed_model(tmp, mp):
    argv = _smoke_run(tmp)
    return argv + ["--resume", "--set", "model.vae.base_channels=16"]


def _preset(text: str):
    def setup(tmp, mp):
        png(tmp / "in" / "a.png")
        (tmp / "my.yaml").write_text(text)
        return ["degrade", str(tmp / "in"), "--out", str(tmp / "out"), "--preset", str(tmp / "my.yaml"),
                "--no-progress"]
    return setup


def _one_op(op: str) -> str:
    return f"name: mine\nstages:\n  - groups:\n      - {{p: 1.0, ops: [{op}]}}\n"


def degrade_tpu(tmp, mp):
    png(tmp / "in" / "a.png")
    return ["degrade", str(tmp / "in"), "--out", str(tmp / "out"), "--device", "tpu", "--no-progress"]


def gap_tpu(tmp, mp):
    png(tmp / "in" / "a.png")
    return ["latent-gap", "--checkpoints", str(SHIPPED), "--real", str(tmp / "in"), "--data", str(tmp / "in"),
            "--out", str(tmp / "out"), "--device", "tpu"]


def restore_tpu(tmp, mp):
    png(tmp / "in" / "a.png")
    return ["restore", str(tmp / "in"), "--out", str(tmp / "out"), "--device", "tpu"]


def train_with_a_bad_image(tmp, mp):
    for i in range(3):
        png(tmp / "in" / f"p{i}.png", (48, 48), seed=i)
    (tmp / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return ["train", "vae-b", "--config", "smoke", "--data", str(tmp / "in"), "--out", str(tmp / "runs"),
            "--no-progress"]


def _evil_checkpoint(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "payload": argparse.Namespace(run="anything")}, path)


def restore_pickled_checkpoint(tmp, mp):
    png(tmp / "in" / "a.png")
    shutil.copytree(SHIPPED, tmp / "runs")
    _evil_checkpoint(tmp / "runs" / "vae-a" / "last.pt")
    return ["restore", str(tmp / "in"), "--out", str(tmp / "out"), "--checkpoints", str(tmp / "runs"),
            "--no-faces", "--no-progress"]


def resume_pickled_checkpoint(tmp, mp):
    for i in range(2):
        png(tmp / "in" / f"p{i}.png", (48, 48), seed=i)
    _evil_checkpoint(tmp / "runs" / "vae-b" / "last.pt")
    return ["train", "vae-b", "--config", "smoke", "--data", str(tmp / "in"), "--out", str(tmp / "runs"),
            "--resume", "--no-progress"]


# ---- checks after a run -------------------------------------------------------------------------------------
def _has(*names: str):
    def check(tmp: Path) -> None:
        for n in names:
            assert (tmp / n).is_file(), f"{n} was not written"
    return check


def _lacks(*names: str):
    def check(tmp: Path) -> None:
        for n in names:
            assert not (tmp / n).exists(), f"{n} exists"
    return check


OUT_WHERE = [("degrade", DEGRADE), ("faces", FACES), ("restore", RESTORE), ("bench", BENCH),
             ("latent-gap", GAP), ("demo", DEMO), ("train", TRAIN)]
UNREADABLE = "cannot read"

CASES = [
    # unreadable inputs: one line naming the file, the others processed, exit 1
    Case("degrade-dangling-symlink", degrade_dangling, 1, ("gone.png", UNREADABLE), "out", _has("out/a.png")),
    Case("faces-dangling-symlink", faces_dangling, 1, ("gone.png", UNREADABLE), "out", _has("out/faces.json")),
    Case("restore-dangling-symlink", restore_dangling, 1, ("gone.png", UNREADABLE), "out", _has("out/final/a.png")),
    Case("degrade-folder-without-search-permission", degrade_locked_folder_real, 1, ("locked", UNREADABLE), "out",
         _has("out/a.png"), root_skip=True),
    Case("degrade-folder-refused-by-the-os", degrade_locked_folder, 1, ("locked", UNREADABLE), "out",
         _has("out/a.png")),
    Case("degrade-file-in-folder-without-search-permission", degrade_file_in_locked_folder_real, 1,
         ("b.png", UNREADABLE), "out", _has("out/a.png"), root_skip=True),
    Case("degrade-file-refused-by-the-os", degrade_unreadable_file, 1, ("secret.png", "permission denied"), "out",
         _has("out/a.png")),
    # --out that cannot be an output folder: one line, exit 2, nothing written
    *[Case(f"{name}-out-is-a-file", _out_is_file(cmd), 2, ("--out", "{tmp}/taken", "not a folder"))
      for name, cmd in OUT_WHERE],
    *[Case(f"{name}-out-below-a-file", _out_below_file(cmd), 2, ("--out", "{tmp}/taken", "not a folder"))
      for name, cmd in OUT_WHERE if name in ("degrade", "restore", "train")],
    *[Case(f"{name}-out-not-writable", _out_not_writable(cmd, real=True), 2, ("--out", "{tmp}/ro", "not writable"),
           root_skip=True) for name, cmd in OUT_WHERE if name in ("degrade", "faces")],
    *[Case(f"{name}-out-refused-by-the-os", _out_not_writable(cmd, real=False), 2,
           ("--out", "{tmp}/ro", "not writable")) for name, cmd in OUT_WHERE if name in ("degrade", "restore", "train")],
    # train --set checked against the config schema
    Case("train-set-negative-steps", train_set("schedule.steps=-5"), 2, ("schedule.steps", "-5")),
    Case("train-set-steps-not-a-number", train_set("schedule.steps=abc"), 2, ("schedule.steps", "abc")),
    Case("train-set-section-replaced-by-a-number", train_set("model.vae=7"), 2, ("model.vae", "7")),
    Case("train-set-huge-crop", train_set("data.crop=1000000"), 2, ("data.crop", "1000000")),
    Case("train-set-lr-not-a-number", train_set("optim.lr=fast"), 2, ("optim.lr", "fast")),
    Case("train-resume-with-another-model", resume_changed_model, 2, ("--resume", "model")),
    # degradation presets
    Case("preset-unknown-parameter", _preset(_one_op("{type: fade, amout: [0.1, 0.2]}")), 2,
         ("fade", "amout", "amount")),
    Case("preset-malformed-yaml", _preset("stages:\n  - groups: [{p: 1.0, ops: [{type: fade\n"), 2,
         ("my.yaml", "YAML")),
    Case("preset-zero-weights", _preset(
        "stages:\n  - groups:\n      - {p: 1.0, choice: [{type: gaussian_noise}], weights: [0]}\n"), 2,
        ("weights", "positive")),
    Case("preset-negative-blur-sigma", _preset(_one_op("{type: gaussian_blur, sigma: [-1.0, 2.0]}")), 2,
         ("gaussian_blur", "sigma", "-1", "allowed")),
    Case("preset-fade-above-one", _preset(_one_op("{type: fade, amount: [0.5, 1.5]}")), 2,
         ("fade", "amount", "1.5", "allowed")),
    Case("preset-noise-sigma-1e30", _preset(_one_op("{type: gaussian_noise, sigma: [1.0e+30, 1.0e+30]}")), 2,
         ("gaussian_noise", "sigma", "allowed")),
    # devices
    Case("degrade-device-tpu", degrade_tpu, 2, ("--device", "tpu")),
    Case("latent-gap-device-tpu", gap_tpu, 2, ("--device", "tpu")),
    Case("restore-device-tpu", restore_tpu, 2, ("--device", "tpu")),
    # training data with one unusable image: skipped with a warning
    Case("train-skips-an-unusable-image", train_with_a_bad_image, 0, ("broken.png", "skipping"), "runs",
         _has("runs/vae-b/last.pt")),
    # checkpoints holding pickled objects: our message, not loaded
    Case("restore-pickled-checkpoint", restore_pickled_checkpoint, 2, ("last.pt", "untrusted", "not loaded"),
         None, _lacks("out")),
    Case("train-resume-pickled-checkpoint", resume_pickled_checkpoint, 2, ("last.pt", "untrusted", "not loaded")),
]


def run_cli(argv: list[str], capsys) -> tuple[int | str, str]:
    """(exit code, stderr + stdout); an exception escaping ``main`` gives ("traceback", its text)."""
    try:
        code: int | str = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code if isinstance(e.code, int) else 2
    except Exception:
        captured = capsys.readouterr()
        return "traceback", captured.err + captured.out + traceback.format_exc()
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, capsys):
    if case.root_skip and not PERMISSIONS_ENFORCED:
        pytest.skip("this process may read and write anything (root); the '-refused-by-the-os' cases cover it")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # anything written into the current folder shows in the checksums
    argv = case.setup(tmp_path, monkeypatch)
    capsys.readouterr()
    skip = tmp_path / case.writes if case.writes else None
    before = checksums(tmp_path, skip)
    try:
        code, text = run_cli(argv, capsys)
        monkeypatch.undo()  # the OS fakes off before the checks read files
        after = checksums(tmp_path, skip)  # (locked folders still locked, as before the run)
    finally:
        monkeypatch.undo()
        for p in [tmp_path, *tmp_path.rglob("*")]:  # unlock what the case locked, for the checks and cleanup
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
    assert code != "traceback", text
    assert "Traceback" not in text, text
    assert code == case.code, f"exit code {code}, expected {case.code}:\n{text}"
    needles = [n.format(tmp=tmp_path) for n in case.needles]
    lines = [ln for ln in text.splitlines() if all(n in ln for n in needles)]
    assert lines, f"no line holds all of {needles}:\n{text}"
    assert after == before, "files outside --out (or inputs) changed"
    if case.after:
        case.after(tmp_path)

