"""Training compute of the shipped stages, measured side by side: seconds per step of each stage's own
training command, run for a while in turn on the same machine, times the steps it was shipped with.

Wall-clock training times recorded at training (``oldphoto-bench ship --list``) were measured on a shared
machine under different loads (the same face stage took 18 min on a quiet machine and 45 min on a busy
one), so they cannot say whether a baseline had as much training as our stages. Here every stage's shipped
command (from its ``provenance.json``, ``--out`` replaced by a temporary folder, ``--set schedule.steps=K``)
runs in turn, in ``--rounds`` rounds whose order alternates. Its seconds per step are the mean over

* stages that age whole photos once every ``photo_reuse`` epochs (``data.degrade_scope photo``, the colour
  stage): the second ageing cycle, steps ``(c, 2c]`` with ``c = steps_per_epoch * photo_reuse`` from the
  shipped run, so one ageing's cost is spread over the steps it serves, as in a full run;
* the others (a batch aged per step, or clean crops): steps ``(--warmup, --steps]``.

Stages that need others (vae-a, mapping) read the shipped checkpoints, linked into the temporary folder.
Prints, per stage: shipped steps, measured s/step, estimated training minutes at this load (steps x s/step)
and the recorded training time, then each baseline against our stages' total::

    python benchmarks/training_compute.py --json results/benchmarks/training_compute.json

Our stages (what ``bench``'s ``ours`` runs): vae-b, vae-a, colour, mapping, scratch, face.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = ("vae-b", "vae-a", "colour", "mapping", "scratch", "face")
BASELINES = ("baseline-unet", "baseline-pix2pix")
NEEDS = {"vae-a": ("vae-b",), "mapping": ("vae-a", "vae-b", "colour"), "mapping-no-pn": ("vae-a", "vae-b", "colour")}


def timing_argv(command: str, runs: Path, steps: int) -> list[str]:
    """The recorded ``oldphoto-bench train ...`` command with ``--out`` -> ``runs``, ``steps`` steps, no
    progress bars and ``--overwrite`` (the temporary run is thrown away)."""
    argv = shlex.split(command)
    if argv[:2] != ["oldphoto-bench", "train"]:
        raise ValueError(f"not a train command: {command!r}")
    out, i = [sys.executable, "-m", "oldphoto_bench", "train"], 2
    while i < len(argv):
        a = argv[i]
        if a == "--out":
            out += ["--out", str(runs)]
            i += 2
            continue
        if a == "--set" and argv[i + 1].startswith(("schedule.steps=", "schedule.save_every=")):
            i += 2
            continue
        if a in ("--overwrite", "--resume", "--no-progress"):
            i += 1
            continue
        out.append(a)
        i += 1
    return [*out, "--set", f"schedule.steps={steps}", "--set", f"schedule.save_every={steps}", "--overwrite",
            "--no-progress"]


def ageing_cycle(prov: dict) -> int:
    """Steps between two agings of the whole training set (0: the stage ages per step or not at all)."""
    data = prov["config"]["data"]
    whole = data.get("degrade_scope") == "photo" or prov["train_stage"][0] == "colour"
    reuse = int(data.get("photo_reuse") or 0)
    return int(prov["training"]["steps_per_epoch"]) * reuse if whole and reuse > 0 else 0


def seconds_per_step(log_csv: Path, first: int, last: int) -> list[float]:
    """Per-step seconds of the logged rows for steps ``(first, last]`` (each row covers ``log_every`` steps)."""
    with log_csv.open() as f:
        rows = [r for r in csv.DictReader(f) if first < int(r["step"]) <= last]
    return [float(r["sec_per_step"]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=Path, default=None, help="shipped folder (default: the package's)")
    ap.add_argument("--stages", default=",".join(OURS + BASELINES), help="comma-separated stages to time")
    ap.add_argument("--steps", type=int, default=40, help="steps per timing run of a stage without photo ageing cycles (default: 40)")
    ap.add_argument("--warmup", type=int, default=10, help="steps not counted (default: 10)")
    ap.add_argument("--rounds", type=int, default=2, help="timing rounds, order reversed every other (default: 2)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    if args.steps <= args.warmup:
        raise SystemExit(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")

    from oldphoto_bench.pretrained import PRETRAINED_DIR

    shipped = args.checkpoints or PRETRAINED_DIR
    stages = [s for s in args.stages.split(",") if s]
    prov = {}
    for s in stages:
        path = shipped / s / "provenance.json"
        if not path.is_file():
            raise SystemExit(f"{path} not found; stages shipped there: "
                             f"{', '.join(sorted(p.parent.name for p in shipped.glob('*/provenance.json')))}")
        prov[s] = json.loads(path.read_text())
    samples: dict[str, list[float]] = {s: [] for s in stages}
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="training_compute_") as tmp:
        for r in range(args.rounds):
            order = stages if r % 2 == 0 else stages[::-1]
            for s in order:
                runs = Path(tmp) / f"{s}_{r}"
                runs.mkdir()
                for need in NEEDS.get(s, ()):
                    (runs / need).symlink_to((shipped / need).resolve(), target_is_directory=True)
                cycle = ageing_cycle(prov[s])
                first, last = (cycle, 2 * cycle) if cycle else (args.warmup, args.steps)
                argv = timing_argv(prov[s]["command"], runs, last)
                print(f"[round {r + 1}/{args.rounds}] {s}: {shlex.join(argv)}", file=sys.stderr, flush=True)
                done = subprocess.run(argv, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{s} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
                samples[s] += seconds_per_step(runs / s / "log.csv", first, last)  # run folder = stage name
    rows = []
    for s in stages:
        sps = statistics.fmean(samples[s])
        steps = int(prov[s]["steps"])
        rows.append({"stage": s, "steps": steps, "sec_per_step": sps, "estimated_seconds": steps * sps,
                     "recorded_seconds": float(prov[s].get("training_seconds") or 0.0), "samples": len(samples[s])})
    print(f"{'stage':18} {'steps':>7} {'s/step':>8} {'est. min':>9} {'recorded min':>13}")
    for r in rows:
        print(f"{r['stage']:18} {r['steps']:7d} {r['sec_per_step']:8.3f} {r['estimated_seconds'] / 60:9.1f} "
              f"{r['recorded_seconds'] / 60:13.1f}")
    by = {r["stage"]: r for r in rows}
    ours = [s for s in OURS if s in by]
    summary = {}
    if ours:
        est = sum(by[s]["estimated_seconds"] for s in ours)
        rec = sum(by[s]["recorded_seconds"] for s in ours)
        print(f"our stages ({', '.join(ours)}): estimated {est / 60:.1f} min, recorded {rec / 60:.1f} min")
        summary["ours"] = {"stages": ours, "estimated_seconds": est, "recorded_seconds": rec}
        for b in BASELINES:
            if b in by:
                ratio = by[b]["estimated_seconds"] / est
                print(f"{b}: estimated {by[b]['estimated_seconds'] / 60:.1f} min = {ratio:.2f} x our stages "
                      f"(recorded: {by[b]['recorded_seconds'] / max(rec, 1e-9):.2f} x)")
                summary[b] = {"ratio_estimated": ratio, "ratio_recorded": by[b]["recorded_seconds"] / max(rec, 1e-9)}
    if args.json:
        from oldphoto_bench.provenance import manifest

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"stages": rows, "summary": summary, "steps": args.steps,
                                         "warmup": args.warmup, "rounds": args.rounds,
                                         "seconds": time.perf_counter() - t0, "manifest": manifest()},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
