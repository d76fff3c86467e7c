"""Interrupted runs lose nothing: `degrade` and `restore` killed (SIGKILL, or SIGINT) as soon as their first
output appears, then rerun into the same folder, end with every image done exactly once: one record per
degraded image that replays to its bytes, and a finished restoration of every photo.

The interrupted command runs with a gate in front of its image loader: every photo but the first waits until
the test has sent the signal, so the signal always lands mid-run, however loaded the machine is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import oldphoto_bench.imageio as imageio
from oldphoto_bench.cli import main
from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.imageio import load_image

REPO = Path(__file__).resolve().parents[1]


def _photos(folder: Path, n: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = (np.random.default_rng(i).random((size, size, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"p{i:02d}.png")
        paths.append(folder / f"p{i:02d}.png")
    return paths


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


# `oldphoto-bench ARGV...` whose image loader lets the first photo through and holds every other one until the
# gate file exists (at most 120 s, so a broken test cannot hang).
GATED_CLI = """
import signal, sys, time
from pathlib import Path

# Ctrl-C as in a terminal: a job started in the background by a non-interactive shell (`cmd &`, as CI
# runners and nohup do) inherits SIGINT ignored, and so would this child
signal.signal(signal.SIGINT, signal.default_int_handler)

import oldphoto_bench.imageio as imageio
from oldphoto_bench.cli import main

gate, first = Path(sys.argv[1]), sys.argv[2]
load = imageio.load_image


def gated_load(path, *args, **kwargs):
    deadline = time.monotonic() + 120
    while Path(path).name != first and not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return load(path, *args, **kwargs)


imageio.load_image = gated_load
sys.exit(main(sys.argv[3:]))
"""


def _run_until_first_output(argv: list[str], watch: Path, sig: int, first: str = "p00.png") -> tuple[int, str]:
    """Run ``oldphoto-bench ARGV`` in a new process with only photo ``first`` let through, send ``sig`` once a
    PNG appears under ``watch``, then let the other photos through; (exit code, stderr). Fails when no output
    appeared within 120 s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    gate = watch.parent / f".{watch.name}.gate"
    proc = subprocess.Popen([sys.executable, "-c", GATED_CLI, str(gate), first, *argv], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    signalled = False
    while proc.poll() is None and time.monotonic() < deadline:
        if watch.is_dir() and any(p.suffix == ".png" for p in watch.rglob("*")):
            proc.send_signal(sig)
            signalled = True
            break
        time.sleep(0.005)
    if signalled:  # let the signal land before the held photos go (a process-directed signal may reach a
        try:       # worker thread first; the main thread sees it on its next bytecode)
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    gate.touch()  # photos already being processed finish, as they would after a real Ctrl-C
    _, err = proc.communicate(timeout=120)
    assert signalled, f"no output appeared under {watch} (exit code {proc.returncode}): {err}"
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_degrade_killed_midway_then_rerun_has_one_replayable_record_per_image(sig, tmp_path):
    src = _photos(tmp_path / "src", n=10, size=160)
    out = tmp_path / "out"
    code, err = _run_until_first_output(["degrade", str(tmp_path / "src"), "--out", str(out), "--no-progress"],
                                        out, sig)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), err
    assert "Traceback" not in err
    done_before = {p.name for p in out.glob("p??.png")}
    assert len(done_before) < len(src), "the command finished before it was interrupted"

    assert main(["degrade", str(tmp_path / "src"), "--out", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    counts = Counter(r["output"] for r in records)
    images = sorted(p.name for p in out.glob("p??.png"))
    assert images == [p.name for p in src]
    assert counts == Counter(images)  # exactly one record per image
    for rec in records:
        clean = load_image(tmp_path / "src" / rec["output"])[0]
        again = Synthesizer.replay(clean, rec)
        assert np.array_equal(imageio.to_uint8(again.image), _pixels(out / rec["output"])), rec["output"]
        assert np.array_equal(again.mask[0, 0].numpy(), _pixels(out / rec["mask"]) > 0), rec["mask"]


def _restore_args(inputs: Path, out: Path, runs: Path) -> list[str]:
    return ["restore", str(inputs), "--out", str(out), "--checkpoints", str(runs), "--no-faces", "--no-progress"]


def _report(out: Path) -> dict[str, dict]:
    entries = json.loads((out / "report.json").read_text())["images"]
    assert len({e["input"] for e in entries}) == len(entries)
    return {Path(e["input"]).name: e for e in entries}


def test_restore_killed_midway_then_rerun_finishes_every_photo(tmp_path, smoke_runs):
    src = _photos(tmp_path / "src", n=6, size=48)
    out = tmp_path / "out"
    code, err = _run_until_first_output(_restore_args(tmp_path / "src", out, smoke_runs), out, signal.SIGKILL)
    assert code == -signal.SIGKILL, err
    assert len(list((out / "final").glob("*.png"))) < len(src), "the command finished before it was killed"

    assert main(_restore_args(tmp_path / "src", out, smoke_runs)) == 0
    report = _report(out)
    assert sorted(report) == [p.name for p in src]
    for name, entry in report.items():
        assert entry["status"] in ("ok", "kept") and entry["output"] is not None, entry
        assert load_image(out / "final" / name)[0].shape == (1, 3, 48, 48)


def test_restore_stopped_between_stage1_and_final_is_finished_on_rerun(tmp_path, smoke_runs, monkeypatch):
    _photos(tmp_path / "src", n=2, size=40)
    out = tmp_path / "out"
    real_save = imageio.save_image

    def stop_at_final(image, path, *a, **kw):
        if Path(path).parent.name == "final":
            raise KeyboardInterrupt
        return real_save(image, path, *a, **kw)

    monkeypatch.setattr(imageio, "save_image", stop_at_final)
    assert main(_restore_args(tmp_path / "src", out, smoke_runs)) == 130
    assert (out / "stage1" / "p00.png").is_file() and not (out / "final" / "p00.png").exists()
    monkeypatch.setattr(imageio, "save_image", real_save)

    assert main(_restore_args(tmp_path / "src", out, smoke_runs)) == 0
    report = _report(out)
    assert [report[n]["status"] for n in ("p00.png", "p01.png")] == ["ok", "ok"]
    assert (out / "final" / "p00.png").is_file() and (out / "final" / "p01.png").is_file()
