"""Cracks and creases of the print's emulsion (structured defects with damage masks).

Real cracked prints (e.g. the paper's ``test_images/old_w_scratch``) show networks of thin, jagged,
mostly light lines where the emulsion split and the paper base shows through, branching off each other,
with small chips along them and sometimes a faint shadow on one side. Folds leave a long, nearly straight
crease with a light halo. Both are drawn procedurally here (the paper's scratch textures were not released).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from ..seeding import numpy_rng
from .base import OPS, DegradationOp, check_image, field_seed, randint, uniform
from .scratches import DARK_GREY, WARM_WHITE
from .strokes import ALPHA_MIN, Canvas, composite, random_colour, random_walk, smooth_noise_1d

LIGHT_MODES = ("lighten", "screen")


def _start(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, float]:
    """A start point and heading: mostly on the border heading inwards (cracks run in from the edges)."""
    if rng.random() < 0.6:
        side = int(rng.integers(4))
        u = rng.uniform(0.05, 0.95)
        p = [(u * w, 0.0), (w, u * h), (u * w, h), (0.0, u * h)][side]
        inward = [np.pi / 2, np.pi, -np.pi / 2, 0.0][side]
        return np.array(p), inward + rng.uniform(-0.7, 0.7)
    return np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h]), rng.uniform(-np.pi, np.pi)


def _crack(canvas: Canvas, chips: list, rng: np.random.Generator, start, heading: float, length: float,
           width: float, value: float, depth: int, step: float) -> None:
    """Draw one crack of ``length`` px as a jagged walk, then recurse into ``depth`` levels of branches."""
    steps = max(3, int(length / step))
    # jagged at the few-pixel scale, straight-ish overall, with one or two sudden bends per crack
    pts, th = random_walk(rng, start, heading, steps, step, wobble=0.35, pull=0.6, kink_prob=3.0 / steps, kink=0.5)
    t = np.linspace(0.0, 1.0, steps)
    taper = np.clip((1.0 - t) * 3.0, 0.35, 1.0)  # thins out towards the tip
    widths = width * taper * smooth_noise_1d(rng, steps, steps // 12, 0.6, 1.4)
    values = value * smooth_noise_1d(rng, steps, steps // 10, 0.6, 1.0)
    canvas.polyline(pts, widths, values)
    # chips of lost emulsion along the crack, wider than the line
    for k in np.flatnonzero(rng.random(steps) < 0.02 * width):
        chips.append((pts[k], width * rng.uniform(0.8, 2.2), width * rng.uniform(0.5, 1.2), np.degrees(th[k]),
                      value))
    if depth <= 0:
        return
    n_branches = int(rng.poisson(0.5 + length / 100.0))
    for k in rng.integers(1, steps, n_branches):
        sign = 1.0 if rng.random() < 0.5 else -1.0
        rest = length * (1 - k / steps)
        _crack(canvas, chips, rng, pts[k], th[k - 1] + sign * rng.uniform(0.35, 1.2),
               max(3 * step, rest * rng.uniform(0.3, 0.9)), width * 0.7, value * rng.uniform(0.7, 1.0),
               depth - 1, step)


def _shifted(alpha: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``alpha`` translated by (dx, dy) pixels with zero fill."""
    out = np.zeros_like(alpha)
    h, w = alpha.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = alpha[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


@OPS.register("cracks")
class Cracks(DegradationOp):
    """Branching networks of thin jagged cracks (light where the paper base shows, or dark), with a mask.

    Args:
        count: number of main cracks (integer range).
        length: main crack length as a fraction of the image diagonal.
        width: main crack width in pixels; branches are 0.7x thinner per level.
        depth: levels of branching (integer range): 2-3 as in real cracked prints.
        opacity: peak coverage.
        dark_prob: probability that the cracks are dark (multiply) instead of light (lighten / screen).
        shadow_prob: probability of a faint dark shadow 1 px beside light cracks (raised emulsion edge).

    Returns ``(image, mask)``; the mask marks every pixel the op may have changed, no other pixel changes.
    """

    name = "cracks"
    structured = True

    def __init__(self, count=(1, 4), length=(0.4, 1.0), width=(1.0, 2.0), depth=(2, 3), opacity=(0.6, 1.0),
                 dark_prob: float = 0.2, shadow_prob: float = 0.5):
        self.count = tuple(count)
        self.length = tuple(length)
        self.width = tuple(width)
        self.depth = tuple(depth)
        self.opacity = tuple(opacity)
        self.dark_prob = float(dark_prob)
        self.shadow_prob = float(shadow_prob)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        dark = bool(rng.random() < self.dark_prob)
        return {
            "seed": field_seed(rng),
            "count": randint(rng, self.count),
            "length": uniform(rng, self.length),
            "width": uniform(rng, self.width),
            "depth": randint(rng, self.depth),
            "opacity": uniform(rng, self.opacity),
            "dark": dark,
            "mode": "multiply" if dark else str(LIGHT_MODES[int(rng.integers(len(LIGHT_MODES)))]),
            "colour": random_colour(rng, DARK_GREY if dark else WARM_WHITE, 0.06),
            "shadow": 0.0 if dark or rng.random() >= self.shadow_prob else uniform(rng, (0.15, 0.4)),
        }

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(image)
        h, w = image.shape[-2:]
        rng = numpy_rng(params["seed"])
        canvas, chips = Canvas(h, w), []
        step = max(2.0, float(np.hypot(h, w)) / 180.0)  # jaggedness scale: a few px per step
        for _ in range(params["count"]):
            start, heading = _start(rng, h, w)
            length = params["length"] * float(np.hypot(h, w)) * rng.uniform(0.6, 1.2)
            _crack(canvas, chips, rng, start, heading, length, params["width"], params["opacity"],
                   params["depth"], step)
        if chips:
            centre, a, b, angle, value = (np.asarray(v) for v in zip(*chips, strict=True))
            canvas.ellipses(np.stack(centre), np.stack([a, b], 1), angle, value)
        alpha = canvas.coverage()
        mask = torch.zeros((1, 1, h, w), dtype=torch.bool, device=image.device)
        out = image
        if params["shadow"] > 0:
            dx, dy = (int(v) for v in rng.choice([-1, 1], 2))
            shade = np.clip(_shifted(alpha, dx, dy) - alpha, 0.0, 1.0) * params["shadow"]
            shade[shade < ALPHA_MIN] = 0.0
            out, mask = composite(out, shade, DARK_GREY, "multiply", mask)
        return composite(out, alpha, params["colour"], params["mode"], mask)


@OPS.register("creases")
class Creases(DegradationOp):
    """Fold lines: a long, nearly straight thin light line with a wider, fainter light halo, with a mask.

    Args:
        count: number of creases (integer range).
        width: core line width in pixels.
        halo: halo radius in pixels (its coverage falls off as ``(1 - d / halo)^2`` with the distance ``d``).
        opacity: core coverage.
        halo_opacity: peak halo coverage.

    Returns ``(image, mask)``; the mask (core and halo wherever its coverage is at least 1/255) marks every
    pixel the op may have changed, no other pixel changes.
    """

    name = "creases"
    structured = True

    def __init__(self, count=(1, 2), width=(1.0, 2.0), halo=(3.0, 8.0), opacity=(0.4, 0.9),
                 halo_opacity=(0.15, 0.4)):
        self.count = tuple(count)
        self.width = tuple(width)
        self.halo = tuple(halo)
        self.opacity = tuple(opacity)
        self.halo_opacity = tuple(halo_opacity)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {
            "seed": field_seed(rng),
            "count": randint(rng, self.count),
            "width": uniform(rng, self.width),
            "halo": uniform(rng, self.halo),
            "opacity": uniform(rng, self.opacity),
            "halo_opacity": uniform(rng, self.halo_opacity),
            "mode": str(LIGHT_MODES[int(rng.integers(len(LIGHT_MODES)))]),
            "colour": random_colour(rng, WARM_WHITE, 0.05),
        }

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(image)
        h, w = image.shape[-2:]
        rng = numpy_rng(params["seed"])
        diag = float(np.hypot(h, w))
        core, band = Canvas(h, w), Canvas(h, w)
        for _ in range(params["count"]):
            # a line through a random interior point, long enough to cross the whole image
            centre = np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h])
            theta = rng.uniform(0.0, np.pi)
            d, nrm = np.array([np.cos(theta), np.sin(theta)]), np.array([-np.sin(theta), np.cos(theta)])
            n = max(32, int(diag / 2))  # ~4 px segments: the line is smooth at that scale
            s = np.linspace(-diag, diag, n)
            bow = rng.normal(0.0, 0.02) * diag * (1 - (s / diag) ** 2)  # a slight bow
            off = bow + smooth_noise_1d(rng, n, n // 6, -0.7, 0.7)  # and a wobble of under a pixel
            pts = centre + s[:, None] * d + off[:, None] * nrm
            widths = params["width"] * smooth_noise_1d(rng, n - 1, n // 30, 0.6, 1.3)
            core.polyline(pts, widths, params["opacity"] * smooth_noise_1d(rng, n - 1, n // 20, 0.5, 1.0))
            band.polyline(pts, params["width"], 1.0)
        # halo with compact support (so the mask stays a band of 2 * halo px around the fold):
        # coverage = halo_opacity * (1 - d / halo)^2 at distance d px from the fold line
        outside = (band.coverage() < 0.5).astype(np.uint8)
        d = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        halo = params["halo_opacity"] * np.clip(1.0 - d / params["halo"], 0.0, 1.0) ** 2
        alpha = np.maximum(core.coverage(), halo)
        alpha[alpha < ALPHA_MIN] = 0.0
        return composite(image, alpha, params["colour"], params["mode"])
