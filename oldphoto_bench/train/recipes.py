"""Training recipes: ``oldphoto_bench/configs/train/<name>.yaml`` (or a YAML path) resolved for one stage.

A recipe covers every stage. Top-level sections (``seed``, ``data``, ``model``, ``optim``, ``loss``,
``schedule``) are shared; ``stages.<stage>`` holds per-stage values merged over them (only keys that
exist at the top level may appear there). ``--set key=value`` overrides apply to the merged config (so
``--set schedule.steps=10`` wins over ``stages.vae-a.schedule.steps``); ``--set stages.vae-a.x=y`` edits a
stage section before the merge.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import apply_overrides, load_config
from .schema import check_config

SECTIONS = ("seed", "data", "model", "optim", "loss", "schedule")


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str) -> dict[str, Any]:
    for key, value in over.items():
        if key not in base:
            valid = ", ".join(sorted(base))
            raise KeyError(f"unknown key {where}.{key} in the recipe; valid keys there: {valid}")
        if isinstance(value, Mapping) and isinstance(base[key], dict):
            _merge(base[key], value, f"{where}.{key}")
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_recipe(config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A recipe by shipped name (``smoke``, ``tiny``, ``paper``), YAML path, or an already loaded mapping."""
    raw = copy.deepcopy(dict(config)) if isinstance(config, Mapping) else load_config(config, "train")
    missing = [s for s in SECTIONS if s not in raw]
    if missing:
        raise KeyError(f"training config {config if not isinstance(config, Mapping) else '(mapping)'} lacks "
                       f"section(s) {', '.join(missing)}; needed: {', '.join(SECTIONS)}")
    return raw


def resolve_config(config: str | Path | Mapping[str, Any], stage: str, overrides: Iterable[str] = ()
                   ) -> dict[str, Any]:
    """The config of one stage: the recipe, its ``stages.<stage>`` section merged in, then the overrides.

    Raises ``KeyError`` listing the valid keys for an unknown override key or stage-section key, and
    ``ValueError`` naming the key for a value of the wrong kind or out of range (:mod:`.schema`).
    """
    from .stages import STAGES

    overrides = list(overrides)
    raw = load_recipe(config)
    stage_sets = [o for o in overrides if o.strip().startswith("stages.")]
    if stage_sets:
        raw = apply_overrides(raw, stage_sets)
    sections = raw.pop("stages", None) or {}
    unknown = sorted(set(sections) - set(STAGES.names()))
    if unknown:
        raise KeyError(f"unknown stage(s) {unknown} under 'stages'; valid names: {', '.join(STAGES.names())}")
    merged = _merge(raw, sections.get(stage) or {}, f"stages.{stage}")
    cfg = apply_overrides(merged, [o for o in overrides if o not in stage_sets])
    check_config(cfg)
    return cfg


def total_steps(cfg: Mapping[str, Any], steps_per_epoch: int) -> int:
    """``schedule.steps`` when set, else ``schedule.epochs * steps_per_epoch``."""
    sched = cfg["schedule"]
    if sched.get("steps"):
        return int(sched["steps"])
    if sched.get("epochs"):
        return int(sched["epochs"]) * int(steps_per_epoch)
    raise ValueError("set schedule.steps or schedule.epochs")


def learning_rate(cfg: Mapping[str, Any], step: int, total: int) -> float:
    """Adam's learning rate at 0-based ``step``: constant, then linear decay to 0 (pix2pixHD's niter_decay).

    ``schedule.decay_from`` is the fraction of the run after which the decay starts (1.0: no decay).
    """
    lr = float(cfg["optim"]["lr"])
    start = int(round(float(cfg["schedule"].get("decay_from", 1.0)) * total))
    if step < start or total <= start:
        return lr
    return lr * max(0.0, (total - step) / (total - start))
