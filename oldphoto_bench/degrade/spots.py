"""Dust, spots and fibres (structured defect with a damage mask).

Prints and their scans collect specks of dust, mould and emulsion pin-holes: many tiny blobs (mostly under a
pixel or two across, a few larger and irregular) and the odd hair or fibre. Dark specks sit on the print;
light ones are holes in the emulsion or dust on a negative.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..seeding import numpy_rng
from .base import OPS, DegradationOp, check_image, field_seed, randint, uniform
from .scratches import DARK_GREY, WARM_WHITE
from .strokes import Canvas, composite, random_colour, random_walk

REFERENCE_AREA = 256 * 256  # ``count`` is per image of this many pixels and scales with the area


def blobs(rng: np.random.Generator, centres: np.ndarray, radii: np.ndarray, values: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Irregular blobs as ellipses: one per blob of radius < 1.5 px, else a cluster of 2-4 overlapping ones.

    Returns centres (K, 2), semi-axes (K, 2), angles (K,) in degrees and coverages (K,) for
    :meth:`~oldphoto_bench.degrade.strokes.Canvas.ellipses`.
    """
    parts = np.where(radii < 1.5, 1, rng.integers(2, 5, len(radii)))
    owner = np.repeat(np.arange(len(radii)), parts)
    r = radii[owner]
    multi = (parts[owner] > 1)[:, None]
    c = centres[owner] + np.where(multi, rng.normal(0.0, 1.0, (len(owner), 2)) * 0.35 * r[:, None], 0.0)
    r = r * np.where(multi[:, 0], rng.uniform(0.55, 0.9, len(owner)), 1.0)
    axes = np.stack([r, r * rng.uniform(0.5, 1.0, len(owner))], 1)
    return c, axes, rng.uniform(0.0, 180.0, len(owner)), values[owner]


@OPS.register("dust")
class Dust(DegradationOp):
    """Many small light or dark spots plus a few hairs/fibres, with a pixel-exact damage mask.

    Args:
        count: number of spots on a 256x256 image (integer range); scaled by ``H*W / 256**2``.
        radius: spot radius range in pixels; radii are drawn as ``lo + (hi - lo) u^3`` (mostly tiny).
        fibres: number of hairs/fibres (integer range), thin curly strokes 3-15 % of the diagonal long.
        opacity: peak coverage of the spots.
        dark_prob: probability that the image's specks are mostly dark (90 % dark, 10 % light) rather than
            mostly light (the reverse).

    Returns ``(image, mask)``; the mask marks every pixel the op may have changed, no other pixel changes.
    """

    name = "dust"
    structured = True

    def __init__(self, count=(20, 120), radius=(0.5, 4.0), fibres=(0, 3), opacity=(0.6, 1.0),
                 dark_prob: float = 0.5):
        self.count = tuple(count)
        self.radius = tuple(radius)
        self.fibres = tuple(fibres)
        self.opacity = tuple(opacity)
        self.dark_prob = float(dark_prob)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        scale = height * width / REFERENCE_AREA
        return {
            "seed": field_seed(rng),
            "count": int(round(randint(rng, self.count) * scale)),
            "radius": [float(v) for v in self.radius],
            "fibres": randint(rng, self.fibres),
            "opacity": uniform(rng, self.opacity),
            "dark_fraction": 0.9 if rng.random() < self.dark_prob else 0.1,
            "light_mode": "lighten" if rng.random() < 0.5 else "screen",
            "light_colour": random_colour(rng, WARM_WHITE, 0.05),
            "dark_colour": random_colour(rng, DARK_GREY, 0.12),
        }

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(image)
        h, w = image.shape[-2:]
        rng = numpy_rng(params["seed"])
        lo, hi = params["radius"]
        light, dark = Canvas(h, w), Canvas(h, w)
        n = params["count"]
        centres = rng.uniform(0.0, 1.0, (n, 2)) * np.array([w, h])
        radii = lo + (hi - lo) * rng.random(n) ** 3
        values = params["opacity"] * rng.uniform(0.5, 1.0, n)
        is_dark = rng.random(n) < params["dark_fraction"]
        for canvas, sel in ((dark, is_dark), (light, ~is_dark)):
            canvas.ellipses(*blobs(rng, centres[sel], radii[sel], values[sel]))
        diag = float(np.hypot(h, w))
        for _ in range(params["fibres"]):
            length = diag * rng.uniform(0.03, 0.15)
            start = rng.uniform(0.0, 1.0, 2) * np.array([w, h])
            steps = max(4, int(length / 1.5))
            pts, _ = random_walk(rng, start, rng.uniform(-np.pi, np.pi), steps, length / steps, wobble=0.25,
                                 pull=0.02)
            target = dark if rng.random() < params["dark_fraction"] else light
            target.polyline(pts, rng.uniform(0.5, 1.2), params["opacity"] * rng.uniform(0.5, 0.9))
        mask = torch.zeros((1, 1, h, w), dtype=torch.bool, device=image.device)
        out, mask = composite(image, dark.coverage(), params["dark_colour"], "multiply", mask)
        return composite(out, light.coverage(), params["light_colour"], params["light_mode"], mask)
