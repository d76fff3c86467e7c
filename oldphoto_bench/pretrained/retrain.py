"""Retrain the shipped checkpoints: every stage of :data:`~.stages.SHIPPED_STAGES` with the tiny recipe on
the shared training sets, in table order, then export them into the package.

    oldphoto-bench ship --retrain runs/tiny [--data-root DIR] [--stages a,b] [--force] [--dry-run]

For each stage it prints the ``oldphoto-bench train`` command, then runs it in this process. A stage whose
``RUNS/<stage>/last.pt`` has all its steps is skipped (``--force`` trains it again with ``--overwrite``);
one that stopped early (an interrupted run, saved every ``schedule.save_every`` steps) is continued with
``--resume``. ``--jobs 2`` runs two train processes at once (:mod:`.parallel`); the stages' recorded times
are in ``oldphoto-bench ship --list``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import CHECKPOINT_FILE, PRETRAINED_DIR
from .stages import RECIPE, ShippedStage, select_stages


@dataclass
class PlannedStage:
    """``action``: ``train``, ``resume``, ``overwrite`` or ``skip``; ``argv``: the train command's arguments
    after ``oldphoto-bench`` (empty for ``skip``); ``why``: a note for the printed plan."""

    row: ShippedStage
    action: str
    argv: list[str]
    why: str = ""

    @property
    def command(self) -> str:
        return shlex.join(["oldphoto-bench", *self.argv])


def _show(path: Path) -> str:
    """``path`` relative to the working directory when that is shorter (``../shared/data/clean/set14``)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return rel if len(rel) < len(str(path)) else str(path)


def data_spec(root: Path, names: Sequence[str]) -> str:
    return ",".join(_show(root / n) for n in names)


def train_argv(row: ShippedStage, runs: str | Path, data_root: Path, config: str = RECIPE,
               overrides: Sequence[str] = (), device: str = "cpu", progress: bool = True) -> list[str]:
    """``train STAGE [ARG] --config tiny --out RUNS --data D [--real R] [--set K=V] --device cpu`` for one table
    row, in the order ``oldphoto-bench train`` records its command in the run's manifest."""
    argv = ["train", *row.train, "--config", config, "--out", str(runs), "--data", data_spec(data_root, row.data)]
    if row.real:
        argv += ["--real", data_spec(data_root, row.real)]
    for o in (*row.sets, *overrides):
        argv += ["--set", o]
    argv += ["--device", device]
    if not progress:
        argv.append("--no-progress")
    return argv


def _progress(run_dir: Path) -> tuple[int | None, int | None, str]:
    """(steps done, steps planned, recorded command) of an existing run, from its checkpoint and manifest."""
    from ..train.checkpoint import load_checkpoint

    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    try:
        step = int(load_checkpoint(run_dir / CHECKPOINT_FILE).get("step", 0))
    except (ValueError, FileNotFoundError):
        step = None
    return step, manifest.get("total_steps"), str(manifest.get("command") or "")


def plan_retrain(runs: str | Path, data_root: Path, stages: str | Sequence[str] | None = None, force: bool = False,
                 config: str = RECIPE, overrides: Sequence[str] = (), device: str = "cpu",
                 progress: bool = True) -> list[PlannedStage]:
    """What :func:`retrain` would do for each selected stage (nothing runs)."""
    plan = []
    for row in select_stages(stages if stages is None or isinstance(stages, str) else list(stages)):
        argv = train_argv(row, runs, data_root, config, overrides, device, progress)
        run_dir = Path(runs) / row.run
        if not (run_dir / CHECKPOINT_FILE).is_file():
            plan.append(PlannedStage(row, "train", argv))
        elif force:
            plan.append(PlannedStage(row, "overwrite", argv + ["--overwrite"], "exists; --force trains it again"))
        else:
            step, total, recorded = _progress(run_dir)
            if step is not None and total is not None and step < total:
                plan.append(PlannedStage(row, "resume", argv + ["--resume"], f"stopped at step {step} of {total}"))
                continue
            why = f"{run_dir / CHECKPOINT_FILE} exists ({step} of {total} steps); --force trains it again"
            if f" --config {config} " not in f"{recorded} ":
                why += f". Note: it was trained by `{recorded or 'an unrecorded command'}`, not with --config {config}"
            plan.append(PlannedStage(row, "skip", [], why))
    return plan


def _check_data(plan: list[PlannedStage], data_root: Path) -> None:
    needed = sorted({n for p in plan if p.action != "skip" for n in (*p.row.data, *p.row.real)})
    missing = [str(data_root / n) for n in needed if not (data_root / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"training data not found: {', '.join(missing)}; pass --data-root DIR (the folder "
                                "holding clean/, old/ and faces/, default: the shared data root, "
                                "$OLDPHOTO_SHARED_DATA or ../shared/data next to the checkout)")


def default_data_root() -> Path:
    from ..data import shared_data_root

    root = shared_data_root()
    if root is None:
        raise FileNotFoundError("no shared data root: pass --data-root DIR (the folder holding clean/, old/ and "
                                "faces/) or set $OLDPHOTO_SHARED_DATA")
    return root


def retrain(runs: str | Path, data_root: str | Path | None = None, stages: str | Sequence[str] | None = None,
            force: bool = False, dry_run: bool = False, dest: str | Path = PRETRAINED_DIR, max_mb: float | None = None,
            config: str = RECIPE, overrides: Sequence[str] = (), device: str = "cpu", progress: bool = True,
            log: Callable[[str], None] = print, jobs: int = 1) -> list[PlannedStage]:
    """Train the selected stages into ``runs`` (see the module docstring), then ship them into ``dest``.

    ``dry_run`` prints the commands and runs nothing. A failing stage raises ``RuntimeError`` naming its
    command; stages finished before it are kept (a rerun skips or resumes them). ``jobs`` > 1 runs that many
    train processes at once, each stage after the ones it needs (:mod:`.parallel`).
    """
    from ..cli import main
    from .export import DEFAULT_MAX_MB, ship_runs

    root = Path(data_root) if data_root is not None else default_data_root()
    max_mb = DEFAULT_MAX_MB if max_mb is None else max_mb
    plan = plan_retrain(runs, root, stages, force, config, overrides, device, progress)
    names = ",".join(p.row.run for p in plan)
    ship_cmd = shlex.join(["oldphoto-bench", "ship", str(runs), "--dest", _show(Path(dest)), "--stages", names,
                           "--max-mb", f"{max_mb:g}"])
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if not dry_run:
        _check_data(plan, root)
    if jobs > 1 and not dry_run:
        from .parallel import run_parallel

        for p in plan:
            if p.action == "skip":
                log(f"{p.row.run}: skipped, {p.why}")
        run_parallel([(p.row.run, p.argv, p.row.needs) for p in plan if p.action != "skip"], Path(runs), jobs,
                     PRETRAINED_DIR, log=log)
    else:
        for i, p in enumerate(plan, 1):
            head = f"[{i}/{len(plan)}] {p.row.run}"
            if p.action == "skip":
                log(f"{head}: skipped, {p.why}")
                continue
            log(f"{head}: {p.command}" + (f"   ({p.why})" if p.why else ""))
            if dry_run:
                continue
            rc = main(p.argv)
            if rc != 0:
                raise RuntimeError(f"{p.row.run}: `{p.command}` failed (exit code {rc}); stages before it are kept, "
                                   "rerun the same command to continue")
    log(f"[ship] {ship_cmd}")
    if not dry_run:
        ship_runs(runs, dest, stages=[p.row.run for p in plan], max_mb=max_mb, log=log)
    return plan
