"""The allowed parameters of every degradation op in a preset, checked before anything is degraded.

A preset names an op by ``type:`` and gives some of its constructor arguments. :func:`build_checked` refuses
an argument the op does not take (listing those it does) and a value outside the range below, naming the
op, the argument and what is allowed; then builds the op. The ranges are wide (they bound what makes sense
on a photo in [0, 1], not what a preset should use) and every shipped preset lies well inside them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import OPS, DegradationOp


@dataclass(frozen=True)
class Limit:
    """``shape``: ``range`` (``[lo, hi]`` with lo <= hi), ``scalar`` (one number) or ``values`` (one or more
    numbers); every number in ``[lo, hi]``, whole when ``integer``, odd when ``odd``. ``names``: instead, a
    list of names among these."""

    lo: float = 0.0
    hi: float = 1.0
    shape: str = "range"
    integer: bool = False
    odd: bool = False
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.names:
            return f"a list of one or more of {', '.join(self.names)}"
        kind = "odd integers" if self.odd else "integers" if self.integer else "numbers"
        span = f"in [{self.lo:g}, {self.hi:g}]"
        return {"range": f"a range [lo, hi] with lo <= hi, both {kind} {span}",
                "scalar": f"one number {span}" if not self.integer else f"one integer {span}",
                "values": f"a list of one or more {kind} {span}"}[self.shape]

    def _number_ok(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if (self.integer or self.odd) and not float(v).is_integer():
            return False
        return self.lo <= v <= self.hi and (not self.odd or int(v) % 2 == 1)

    def ok(self, v: Any) -> bool:
        if self.names:
            return isinstance(v, (list, tuple)) and len(v) > 0 and all(x in self.names for x in v)
        if self.shape == "scalar":
            return self._number_ok(v)
        if not isinstance(v, (list, tuple)) or not v or not all(self._number_ok(x) for x in v):
            return False
        return len(v) == 2 and v[0] <= v[1] if self.shape == "range" else True


UNIT = Limit(0.0, 1.0)  # opacities, amounts, probabilities ...
PROB = Limit(0.0, 1.0, shape="scalar")
BLENDS = ("normal", "addition", "screen", "lighten", "multiply", "darken", "overlay")


def _count(hi: int) -> Limit:
    return Limit(0, hi, integer=True)


LIMITS: dict[str, dict[str, Limit]] = {
    "gaussian_blur": {"kernel_sizes": Limit(1, 51, shape="values", odd=True), "sigma": Limit(0.1, 50.0)},
    "gaussian_noise": {"sigma": Limit(0.0, 255.0)},  # on the 0-255 scale
    "speckle_noise": {"sigma": Limit(0.0, 255.0)},
    "salt_pepper": {"amount": UNIT, "salt_share": UNIT},
    "low_resolution": {"scale": Limit(0.01, 1.0)},
    "jpeg": {"quality": Limit(1, 100, integer=True)},
    "grayscale": {},
    "paper_texture": {"strength": UNIT, "scale": Limit(0.001, 1.0), "modes": Limit(names=BLENDS),
                      "fibre_density": Limit(0.0, 100.0, shape="scalar")},
    "film_grain": {"intensity": UNIT, "sigma": Limit(0.1, 20.0)},
    "fade": {"amount": UNIT, "black": UNIT, "white": UNIT},
    "yellowing": {"amount": UNIT, "tint_green": UNIT, "tint_blue": UNIT},
    "sepia": {"amount": UNIT},
    "contrast_brightness": {"contrast": Limit(0.0, 10.0), "brightness": Limit(-1.0, 1.0)},
    "vignette": {"strength": UNIT, "inner": Limit(0.0, 0.99)},
    "scratches": {"count": _count(1000), "width": Limit(0.1, 100.0), "opacity": UNIT, "dark_prob": PROB,
                  "bright_modes": Limit(names=BLENDS)},
    "cracks": {"count": _count(100), "length": Limit(0.0, 10.0), "width": Limit(0.1, 100.0),
               "depth": Limit(0, 6, integer=True), "opacity": UNIT, "dark_prob": PROB, "shadow_prob": PROB},
    "creases": {"count": _count(100), "width": Limit(0.1, 100.0), "halo": Limit(0.0, 500.0), "opacity": UNIT,
                "halo_opacity": UNIT},
    "dust": {"count": _count(100_000), "radius": Limit(0.1, 100.0), "fibres": _count(1000), "opacity": UNIT,
             "dark_prob": PROB},
    "torn": {"count": _count(50), "size": UNIT, "kinds": Limit(names=("corner", "edge", "hole")),
             "weights": Limit(0.0, 1e6, shape="values"), "texture": UNIT},
}


def op_arguments(cls: type) -> list[str]:
    """The names of the constructor arguments of op class ``cls`` (what a preset may set)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def check_op_config(cfg: Mapping[str, Any] | str) -> None:
    """Raise ``KeyError`` for an unknown op or argument and ``ValueError`` for a value out of its range."""
    cfg = {"type": cfg} if isinstance(cfg, str) else cfg
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ValueError(f"a preset op must be a mapping with a 'type' key, e.g. {{type: fade}}; got {cfg!r}")
    name = cfg["type"]
    cls = OPS.get(name)  # unknown: KeyError listing the valid names
    takes = op_arguments(cls)
    unknown = sorted(set(cfg) - {"type", *takes})
    if unknown:
        raise KeyError(f"op {name}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(takes) or '(none)'}")
    limits = LIMITS.get(name, {})
    for key, value in cfg.items():
        limit = limits.get(key)
        if limit is not None and not limit.ok(value):
            raise ValueError(f"op {name}: parameter {key} = {value!r} is out of range; allowed: {limit.describe()}")
    if name == "torn" and "weights" in cfg and not sum(cfg["weights"]) > 0:
        raise ValueError(f"op torn: parameter weights = {cfg['weights']!r} must have a positive sum")


def build_checked(cfg: Mapping[str, Any] | str) -> DegradationOp:
    """:func:`check_op_config`, then ``OPS.build(cfg)``."""
    check_op_config(cfg)
    return OPS.build(cfg)
