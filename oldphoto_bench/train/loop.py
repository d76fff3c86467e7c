"""The training loop: one stage, its files, progress, checkpoints and exact resume.

    runs/<stage>/last.pt        checkpoint (atomic: temp file + rename), every schedule.save_every steps
                                and at the end
    runs/<stage>/config.yaml    the resolved config, with a ``run`` section (stage, data, real, device, ...)
    runs/<stage>/manifest.json  seed, versions, git revision, command, VGG used or not, precision
    runs/<stage>/log.csv        step, epoch, lr, seconds, sec_per_step, losses (every schedule.log_every)
    runs/<stage>/run.log        notes (warnings, VGG, data) ; runs/<stage>/tb/  TensorBoard events

Exact resume: step ``k`` depends only on the networks, optimizers and scaler after step ``k - 1``, the
stream positions and ``(seed, rank, k)`` (noise), all of which the checkpoint holds, so a resumed run
computes bit for bit the same next loss on the same machine and device.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import dump_config
from ..provenance import write_manifest
from . import baseline_stage, colour_stage, face_stage, mapping_stage, scratch_stage, torn_stage, vae_stage  # noqa: F401  (register the stages)
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .ddp import DistInfo, barrier, init_distributed, mean_over_ranks, shutdown_distributed
from .logs import RunLog
from .recipes import learning_rate, resolve_config, total_steps
from .stages import STAGES, StageContext

RUN_FILES = (CHECKPOINT_NAME, "config.yaml", "manifest.json", "log.csv", "run.log")
SMOKE_RECIPE = "smoke"


class RunExistsError(ValueError):
    """A stage's checkpoint exists and neither resuming nor overwriting was asked for."""


def check_data_specs(recipe: Any, data: str, real: str | None) -> list[str]:
    """Refuse test sets as training data (``data.splits``), except ``embedded`` with the smoke recipe.

    Returns notes for the run log (one per allowed test-set use).
    """
    from ..data import check_not_test_set

    notes = []
    for flag, spec in (("--data", data), ("--real", real)):
        if not spec:
            continue
        parts = [p.strip() for p in spec.split(",")]
        if recipe == SMOKE_RECIPE and "embedded" in parts:
            notes.append(f"note: {flag} embedded is a test set; the smoke recipe may use it for smoke tests only, "
                 "its results mean nothing")
            rest = ",".join(p for p in parts if p != "embedded")
            if rest:
                check_not_test_set(rest)
            continue
        try:
            check_not_test_set(spec)
        except ValueError as e:
            raise ValueError(f"{flag}: {e}. Train on your own folders, e.g. --data ../shared/data/clean/cbsd68,"
                             "../shared/data/clean/mcmaster,../shared/data/clean/set14 --real "
                             "../shared/data/old/bopbtl/old, or hf:<data set>") from None
    return notes


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Trainer:
    """Runs one stage into ``runs/<stage>``; see the module docstring for what it writes.

    ``run(until)`` trains up to step ``until`` (default: the recipe's total), saves ``last.pt`` and returns
    the per-step losses of this call; it may be called again to continue in the same process.
    """

    def __init__(self, stage: str, cfg: Mapping[str, Any], runs: str | Path = "runs", data: str = "embedded",
                 real: str | None = None, device: str = "cpu", *, resume: bool = False, overwrite: bool = False,
                 progress: bool = True, dist: DistInfo | None = None, stage_args: Sequence[str] = (),
                 tensorboard: bool = True, command: str | None = None, notes: Sequence[str] = ()):
        stage_cls = STAGES.get(stage)
        self.name, self.runs, self.device = stage, Path(runs), device
        self.dist = dist or DistInfo()
        self.progress = progress
        run_name = getattr(stage_cls, "run_name", None)  # a stage may name its folder from its arguments
        self.dir = self.runs / (run_name(tuple(stage_args)) if run_name else stage)
        self.ckpt_path = self.dir / CHECKPOINT_NAME
        if resume and not self.ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: {self.ckpt_path} not found; start the run without --resume")
        if not resume and self.ckpt_path.exists() and not overwrite:
            raise RunExistsError(f"{self.ckpt_path} exists: a {stage} run is already there; continue it with "
                                 "--resume, replace it with --overwrite, or choose another --out")
        barrier(self.dist)  # every rank has checked before the main one touches anything
        ckpt = load_checkpoint(self.ckpt_path) if resume else None
        self.cfg = dict(cfg)
        self.cfg["run"] = {"stage": stage, "data": data, "real": real, "device": device,
                           "world_size": self.dist.world_size, "stage_args": list(stage_args)}
        changed = self._check_resume(ckpt["config"]) if ckpt is not None else []  # before any file is touched
        if overwrite and not resume and self.dist.is_main:
            for name in RUN_FILES:
                (self.dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.dir / "tb", ignore_errors=True)
        self.log = RunLog(self.dir, enabled=self.dist.is_main, resume_step=ckpt["step"] if ckpt else None,
                          tensorboard=tensorboard)
        for line in notes:
            self.log.note(line)
        if changed:
            self.log.note("--resume with changed settings: " + "; ".join(changed))
        ctx = StageContext(runs=self.runs, data=data, real=real, device=device, dist=self.dist,
                           stage_args=tuple(stage_args), note=self.log.note)
        self.stage = stage_cls(self.cfg, ctx)
        self.step, self.elapsed = 0, 0.0
        if ckpt is not None:
            self.stage.load_state_dict(ckpt)
            self.step, self.elapsed = int(ckpt["step"]), float(ckpt["elapsed"])
            self.log.note(f"resumed {stage} from {self.ckpt_path} at step {self.step}")
        self.total = total_steps(self.cfg, self.stage.steps_per_epoch)
        self.log.note(f"{stage}: {self.total} steps, {self.stage.steps_per_epoch} per epoch, "
                      f"{self.stage.precision.description} on {device}, {self.dist.world_size} process(es)")
        if self.dist.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            dump_config(self.cfg, self.dir / "config.yaml")
            extra = {"stage": stage, "precision": self.stage.precision.description,
                     "world_size": self.dist.world_size, "total_steps": self.total,
                     "steps_per_epoch": self.stage.steps_per_epoch, "resumed_from_step": ckpt and ckpt["step"],
                     **self.stage.extra}
            if command:
                extra["command"] = command
            write_manifest(self.dir / "manifest.json", seed=self.cfg["seed"], config=self.cfg, **extra)

    def _check_resume(self, old: Mapping[str, Any]) -> list[str]:
        """Refuse a resume whose networks differ from the checkpoint's; -> the other changed settings.

        Model keys the checkpoint's config lacks (added to the recipe since, e.g. another stage's network)
        are reported with the other changes: they cannot describe a network this checkpoint holds, and its
        weights must still load into the networks built now."""
        before, after = _flat(old.get("model", {}), "model."), _flat(self.cfg["model"], "model.")
        diff = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
                if before.get(k) != after.get(k) and k in before]
        if diff:
            raise ValueError(f"--resume: the model config differs from the one {self.ckpt_path} was trained with "
                             f"({'; '.join(diff[:3])}); resume with the same config, or start over with "
                             "--overwrite (nothing was changed)")
        before, after = _flat(old), _flat(self.cfg)
        return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
                if before.get(k) != after.get(k)]

    def save(self) -> None:
        if self.dist.is_main:
            state = self.stage.state_dict()
            save_checkpoint(self.ckpt_path, {"stage": self.name, "step": self.step, "elapsed": self.elapsed,
                                             "config": self.cfg, **state})

    def run(self, until: int | None = None) -> list[dict[str, float]]:
        from tqdm import tqdm

        end = self.total if until is None else min(int(until), self.total)
        sched = self.cfg["schedule"]
        log_every, save_every = max(1, int(sched.get("log_every", 1))), int(sched.get("save_every", 0) or 0)
        history: list[dict[str, float]] = []
        threads_before = torch.get_num_threads()
        if self.cfg.get("threads"):
            torch.set_num_threads(int(self.cfg["threads"]))
        bar = tqdm(total=self.total, initial=self.step, desc=self.name, unit="step", dynamic_ncols=True,
                   disable=not (self.progress and self.dist.is_main) or self.step >= end)
        try:
            while self.step < end:
                lr = learning_rate(self.cfg, self.step, self.total)
                self.stage.set_lr(lr)
                epoch = self.stage.epoch
                t0 = time.perf_counter()
                losses = self.stage.train_step(self.step)
                self.stage.precision.update()
                dt = time.perf_counter() - t0
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise FloatingPointError(f"{self.name}: loss(es) {bad} not finite at step {self.step + 1}; "
                                             "lower optim.lr or check the data")
                self.step += 1
                self.elapsed += dt
                history.append(losses)
                if self.step % log_every == 0 or self.step == end or self.step == 1:
                    avg = mean_over_ranks(losses, self.dist, self.device)
                    self.log.row({"step": self.step, "epoch": epoch, "lr": lr, "seconds": round(self.elapsed, 3),
                                  "sec_per_step": round(dt, 4), **avg})
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k != "l1_raw"}, refresh=False)
                bar.update(1)
                if save_every and self.step % save_every == 0 and self.step < end:
                    self.save()
        finally:
            bar.close()
            torch.set_num_threads(threads_before)
        self.save()
        return history

    def close(self) -> None:
        self.stage.close()
        self.log.close()


def train_stage(stage: str, config: str | Path | Mapping[str, Any], runs: str | Path = "runs",
                data: str = "embedded", real: str | None = None, device: str = "cpu",
                overrides: Sequence[str] = (), *, resume: bool = False, overwrite: bool = False,
                progress: bool = True, stage_args: Sequence[str] = (), command: str | None = None) -> Path:
    """Resolve the recipe, check the data, train ``stage`` (under torchrun: on every rank) -> checkpoint path."""
    STAGES.get(stage)  # unknown stage: KeyError listing the valid ones
    cfg = resolve_config(config, stage, overrides)
    info, device = init_distributed(device)
    try:
        notes = check_data_specs(config if isinstance(config, str) else None, data, real)
        trainer = Trainer(stage, cfg, runs, data, real, device, resume=resume, overwrite=overwrite,
                          progress=progress, dist=info, stage_args=stage_args, command=command, notes=notes)
        try:
            trainer.run()
        finally:
            trainer.close()
        barrier(info)
    finally:
        shutdown_distributed()
    return trainer.ckpt_path
