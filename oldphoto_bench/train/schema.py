"""The allowed values of a training config's keys, checked once the recipe, its stage section and the
``--set`` overrides are merged (so a bad value fails before anything is built or written).

Types come from the recipe itself (``--set`` may not turn a number into text, or a section into a number:
see :func:`oldphoto_bench.config.apply_overrides`); the ranges are here. Keys not listed here are checked by
the code that uses them (e.g. the scratch detector's crop multiple).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Number:
    """A number in ``[lo, hi]`` (``lo`` excluded when ``open_lo``); ``integer``: whole numbers only,
    ``multiple``: of this; ``nullable``: null allowed (``why_null`` says what null means)."""

    lo: float
    hi: float
    integer: bool = False
    open_lo: bool = False
    multiple: int = 1
    nullable: bool = False
    why_null: str = ""

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.multiple > 1:
            kind = f"a multiple of {self.multiple}"
        lo = f"above {self.lo:g}" if self.open_lo else f"at least {self.lo:g}"
        text = f"{kind} {lo} and at most {self.hi:g}"
        return text + (f" (or null{self.why_null})" if self.nullable else "")

    def ok(self, v: Any) -> bool:
        if v is None:
            return self.nullable
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.integer and not float(v).is_integer():
            return False
        if v < self.lo or v > self.hi or (self.open_lo and v == self.lo):
            return False
        return int(v) % self.multiple == 0 if self.multiple > 1 else True


BIG = 10**12
RULES: dict[str, Number] = {
    "seed": Number(0, 2**63 - 1, integer=True),
    "threads": Number(1, 4096, integer=True, nullable=True, why_null=": torch's default"),
    "data.crop": Number(8, 4096, integer=True, multiple=4),
    "data.batch_size": Number(1, 65536, integer=True),
    "data.real_fraction": Number(0, 1),
    "data.num_workers": Number(0, 1024, integer=True),
    "data.photo_reuse": Number(1, BIG, integer=True),
    "optim.lr": Number(0, 10, open_lo=True),
    "schedule.steps": Number(1, BIG, integer=True, nullable=True, why_null=" and set schedule.epochs"),
    "schedule.epochs": Number(1, BIG, integer=True, nullable=True, why_null=": schedule.steps decides"),
    "schedule.decay_from": Number(0, 1),
    "schedule.log_every": Number(1, BIG, integer=True),
    "schedule.save_every": Number(0, BIG, integer=True, nullable=True, why_null=": only at the end"),
}
BETA = Number(0, 1)  # each of optim.betas; 1 itself is refused below (Adam divides by 1 - beta^t)
LOSS_WEIGHT = Number(0, 1e6)  # every number under loss: a weight (or a loss setting) that is never negative


def _get(cfg: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _numbers(node: Any, prefix: str) -> list[tuple[str, Any]]:
    """``(key, value)`` of every number-like leaf under ``node`` (None and strings skipped)."""
    if isinstance(node, Mapping):
        return [kv for k, v in node.items() for kv in _numbers(v, f"{prefix}.{k}")]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [(prefix, node)]
    return []


def check_config(cfg: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first key whose value is out of its allowed range."""
    for key, rule in RULES.items():
        present, value = _get(cfg, key)
        if present and not rule.ok(value):
            raise ValueError(f"config key {key} must be {rule.describe()}, got {value!r}")
    present, betas = _get(cfg, "optim.betas")
    if present and not (isinstance(betas, (list, tuple)) and len(betas) == 2
                        and all(BETA.ok(b) and b < 1 for b in betas)):
        raise ValueError(f"config key optim.betas must be two numbers in [0, 1), got {betas!r}")
    for key, value in _numbers(cfg.get("loss", {}), "loss"):
        if not LOSS_WEIGHT.ok(value):
            raise ValueError(f"config key {key} must be {LOSS_WEIGHT.describe()}, got {value!r}")
    sched = cfg.get("schedule", {})
    if isinstance(sched, Mapping) and "steps" in sched and sched.get("steps") is None and not sched.get("epochs"):
        raise ValueError("config keys schedule.steps and schedule.epochs are both null: set one of them")
