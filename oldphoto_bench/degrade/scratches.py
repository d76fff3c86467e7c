"""Scratches: thin, long, mostly straight bright or dark curves (structured defect with a damage mask).

The paper (Wan et al. 2020, Sec. 4.1) blends 62 collected scratch textures onto clean photos with the modes
screen, lighten, addition (bright marks) and multiply (dark marks). The textures were never released, so
scratches are drawn procedurally here: each one is a cubic Bezier curve across a good part of the image,
mostly near-straight, with a slight wobble, a width that swells and tapers along its length, a varying
intensity and occasional gaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..seeding import numpy_rng
from .base import OPS, DegradationOp, check_image, field_seed, randint, uniform
from .strokes import Canvas, composite, cubic_bezier, random_colour, smooth_noise_1d

BRIGHT_MODES = ("screen", "lighten", "addition")  # the paper's modes for light marks
WARM_WHITE = (0.94, 0.92, 0.86)
DARK_GREY = (0.18, 0.16, 0.14)


def scratch_curve(rng: np.random.Generator, h: int, w: int, width: float, opacity: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scratch: points (N, 2), per-segment widths (N-1,) px and coverage values (N-1,) in [0, 1]."""
    diag = float(np.hypot(h, w))
    long = rng.random() < 0.75  # most scratches run across a good part of the print
    length = diag * (rng.uniform(0.35, 1.0) if long else rng.uniform(0.08, 0.35))
    theta = rng.uniform(0.0, np.pi)
    mid = np.array([rng.uniform(0.05, 0.95) * w, rng.uniform(0.05, 0.95) * h])
    d = np.array([np.cos(theta), np.sin(theta)])
    nrm = np.array([-d[1], d[0]])
    p0, p3 = mid - d * length / 2, mid + d * length / 2
    bend = 0.25 if rng.random() < 0.25 else 0.05  # some curved, most near-straight
    p1 = p0 + (p3 - p0) / 3 + nrm * rng.normal(0.0, bend) * length
    p2 = p0 + 2 * (p3 - p0) / 3 + nrm * rng.normal(0.0, bend) * length
    n = max(16, int(length / 2))
    pts = cubic_bezier(p0, p1, p2, p3, n)
    # a hand-made wobble of a fraction of a pixel, smooth over ~20 px
    pts += nrm * smooth_noise_1d(rng, n, n // 10, -0.6, 0.6)[:, None]
    t = np.linspace(0.0, 1.0, n - 1)
    taper = np.clip(np.sin(np.pi * t) * 4.0, 0.25, 1.0)  # the ends thin out over the first/last ~8 %
    widths = width * taper * smooth_noise_1d(rng, n - 1, n // 25, 0.5, 1.3)
    values = opacity * smooth_noise_1d(rng, n - 1, n // 15, 0.55, 1.0)
    if rng.random() < 0.35:  # broken scratch: a few gaps
        for _ in range(int(rng.integers(1, 4))):
            a = int(rng.integers(0, n - 1))
            values[a : a + int(rng.integers(2, max(3, n // 8)))] = 0.0
    return pts, widths, values


@OPS.register("scratches")
class Scratches(DegradationOp):
    """Thin bright or dark scratches with a pixel-exact damage mask.

    Args:
        count: number of scratches, an integer range (closed).
        width: peak stroke width in pixels; each scratch draws its own from this range.
        opacity: peak coverage of each scratch.
        dark_prob: probability that a scratch is dark (multiply) rather than bright (screen / lighten /
            addition, one mode per image drawn from ``bright_modes``). Bright marks are more common on prints.
        bright_modes: the blend modes for bright scratches (the paper's screen, lighten, addition).

    ``apply`` returns ``(image, mask)``: ``mask`` (1, 1, H, W) bool marks every pixel the op may have
    changed; no pixel outside it changes.
    """

    name = "scratches"
    structured = True

    def __init__(self, count=(1, 6), width=(1.0, 3.0), opacity=(0.5, 1.0), dark_prob: float = 0.25,
                 bright_modes=BRIGHT_MODES):
        self.count = tuple(count)
        self.width = tuple(width)
        self.opacity = tuple(opacity)
        self.dark_prob = float(dark_prob)
        self.bright_modes = tuple(bright_modes)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        n = randint(rng, self.count)
        return {
            "seed": field_seed(rng),
            "widths": [uniform(rng, self.width) for _ in range(n)],
            "opacities": [uniform(rng, self.opacity) for _ in range(n)],
            "dark": [bool(rng.random() < self.dark_prob) for _ in range(n)],
            "bright_mode": str(self.bright_modes[int(rng.integers(len(self.bright_modes)))]),
            "bright_colour": random_colour(rng, WARM_WHITE, 0.05),
            "dark_colour": random_colour(rng, DARK_GREY, 0.1),
        }

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(image)
        h, w = image.shape[-2:]
        rng = numpy_rng(params["seed"])
        bright, dark = Canvas(h, w), Canvas(h, w)
        for wd, op, is_dark in zip(params["widths"], params["opacities"], params["dark"], strict=True):
            (dark if is_dark else bright).polyline(*scratch_curve(rng, h, w, wd, op))
        mask = torch.zeros((1, 1, h, w), dtype=torch.bool, device=image.device)
        out = image
        if any(params["dark"]):
            out, mask = composite(out, dark.coverage(), params["dark_colour"], "multiply", mask)
        if not all(params["dark"]):
            out, mask = composite(out, bright.coverage(), params["bright_colour"], params["bright_mode"], mask)
        return out, mask
