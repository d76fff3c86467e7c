"""Run the retrain's train commands as ``jobs`` processes at once, each stage after the stages it needs.

The shipped stages form a small dependency graph (:attr:`~.stages.ShippedStage.needs`: vae-a after vae-b,
the mappings after both VAEs and the colour stage; the detector, the face stage and the baselines stand
alone). With one thread per training process (the tiny recipe), two processes use both cores of a 2-core
machine, and the retrain's wall-clock time falls from the sum of the stages' times towards half of it.

Order: among the stages whose needs are done, the one with the longest remaining chain starts first
(critical path, with each stage's duration estimated from the shipped ``provenance.json``'s training time,
or 1 when there is none), so that a long standalone stage (the U-Net baseline) does not start last.
Each process writes its output to ``RUNS/retrain-logs/<stage>.log``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LOG_DIR = "retrain-logs"


def estimated_seconds(run: str, shipped: Path) -> float:
    """The shipped stage's recorded training time (1.0 when unknown): only used to order the stages."""
    try:
        return max(1.0, float(json.loads((shipped / run / "provenance.json").read_text())["training_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return 1.0


def critical_path(names: Sequence[str], needs: dict[str, tuple[str, ...]], cost: dict[str, float]) -> dict[str, float]:
    """For each stage: its cost plus the longest chain of stages (among ``names``) that wait for it."""
    memo: dict[str, float] = {}

    def length(n: str) -> float:
        if n not in memo:
            after = [m for m in names if n in needs.get(m, ())]
            memo[n] = cost[n] + max((length(m) for m in after), default=0.0)
        return memo[n]

    return {n: length(n) for n in names}


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run_parallel(stages: Sequence[tuple[str, list[str], tuple[str, ...]]], runs: Path, jobs: int, shipped: Path,
                 log: Callable[[str], None] = print, poll: float = 2.0,
                 launcher: Sequence[str] = (sys.executable, "-m", "oldphoto_bench")) -> None:
    """Run ``stages`` (``(name, argv after "oldphoto-bench", needs)``) ``jobs`` at a time, see the module doc.
    Each process runs ``[*launcher, *argv, "--no-progress"]``.

    A need that is not among ``stages`` must already be trained in ``runs`` (the train command says so
    otherwise). A failing stage stops new starts; the running ones finish (each is resumable), then
    ``RuntimeError`` names the failed stages and their logs. Ctrl-C terminates the running processes.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    names = [n for n, _, _ in stages]
    argv = {n: a for n, a, _ in stages}
    needs = {n: tuple(d for d in ds if d in names) for n, _, ds in stages}
    priority = critical_path(names, needs, {n: estimated_seconds(n, shipped) for n in names})
    logs = Path(runs) / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    waiting, running, done, failed = list(names), {}, set(), []
    t0 = time.monotonic()
    try:
        while waiting or running:
            ready = [n for n in waiting if all(d in done for d in needs[n])] if not failed else []
            for n in sorted(ready, key=lambda n: -priority[n])[: jobs - len(running)]:
                waiting.remove(n)
                cmd = [*launcher, *argv[n]]
                if "--no-progress" not in cmd:
                    cmd.append("--no-progress")  # bars of several processes would interleave
                out = (logs / f"{n}.log").open("w")
                running[n] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out, time.monotonic())
                log(f"[{_clock(time.monotonic() - t0)}] start {n}: {shlex.join(['oldphoto-bench', *argv[n]])} "
                    f"(output: {logs / f'{n}.log'})")
            for n, (proc, out, started) in list(running.items()):
                if proc.poll() is None:
                    continue
                out.close()
                del running[n]
                took = _clock(time.monotonic() - started)
                if proc.returncode == 0:
                    done.add(n)
                    log(f"[{_clock(time.monotonic() - t0)}] done {n} in {took}")
                else:
                    failed.append(n)
                    log(f"[{_clock(time.monotonic() - t0)}] FAILED {n} after {took} (exit code {proc.returncode}); "
                        f"see {logs / f'{n}.log'}; no new stages start")
            if failed and not running:
                break
            if running:
                time.sleep(poll)
            elif waiting and not failed and not any(all(d in done for d in needs[n]) for n in waiting):
                raise RuntimeError(f"stages {', '.join(waiting)} wait for each other")  # not in the shipped table
    except KeyboardInterrupt:
        for proc, _out, _ in running.values():
            proc.terminate()
        for proc, out, _ in running.values():
            proc.wait()
            out.close()
        raise
    if failed:
        raise RuntimeError(f"failed: {', '.join(failed)} (logs in {logs}); stages finished before are kept, rerun "
                           "the same command to continue")
