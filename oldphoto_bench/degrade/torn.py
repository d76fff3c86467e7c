"""Torn and missing regions: a torn-off corner or edge piece, or a hole (structured defect with a mask).

The missing paper shows the scan background: a flat light colour (paper white / cream) with a slight
texture. Tear boundaries are fractal (midpoint displacement), rough at every scale like torn card.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from ..seeding import numpy_rng
from .base import OPS, DegradationOp, check_image, field_seed, randint, uniform
from .strokes import Canvas, composite, jagged_path, random_colour

KINDS = ("corner", "edge", "hole")
PAPER_WHITE = (0.93, 0.91, 0.86)


def _tear(rng: np.random.Generator, a, b, roughness: float, bow: float) -> np.ndarray:
    """A jagged tear line from ``a`` to ``b`` that bows sideways by ``bow`` times its length."""
    pts = jagged_path(rng, a, b, roughness, levels=7)
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    nrm = np.array([-d[1], d[0]])  # length-scaled normal
    t = np.linspace(0.0, 1.0, len(pts))[:, None]
    return pts + bow * np.sin(np.pi * t) * nrm


def corner_piece(rng: np.random.Generator, h: int, w: int, size: float) -> np.ndarray:
    """Polygon (N, 2) of a torn-off corner whose sides along the edges are about ``size * min(h, w)``."""
    m = min(h, w)
    a, b = size * m * rng.uniform(0.6, 1.4), size * m * rng.uniform(0.6, 1.4)
    path = _tear(rng, (a, -1.0), (-1.0, b), 0.12, rng.uniform(-0.25, 0.05))
    poly = np.vstack([[(-1.0, -1.0)], path])
    if rng.random() < 0.5:  # mirror into one of the four corners
        poly[:, 0] = w - poly[:, 0]
    if rng.random() < 0.5:
        poly[:, 1] = h - poly[:, 1]
    return poly


def edge_piece(rng: np.random.Generator, h: int, w: int, size: float) -> np.ndarray:
    """Polygon of a piece torn out of one edge: about ``size * min(h, w)`` deep and 2-5x as wide."""
    side = int(rng.integers(4))
    along = w if side in (0, 2) else h  # length of the chosen edge
    depth = size * min(h, w)
    span = min(along * 0.9, depth * rng.uniform(2.0, 5.0))
    x0 = rng.uniform(0.0, along - span)
    xm = x0 + span * rng.uniform(0.3, 0.7)
    apex = (xm, depth * rng.uniform(0.7, 1.2))
    path = np.vstack([_tear(rng, (x0, -1.0), apex, 0.15, 0.0), _tear(rng, apex, (x0 + span, -1.0), 0.15, 0.0)[1:]])
    x, y = path[:, 0], path[:, 1]
    if side == 0:
        return np.stack([x, y], 1)
    if side == 2:
        return np.stack([x, h - y], 1)
    if side == 1:
        return np.stack([w - y, x], 1)
    return np.stack([y, x], 1)


def hole(rng: np.random.Generator, h: int, w: int, size: float) -> np.ndarray:
    """Polygon of a ragged hole of radius about ``size * min(h, w) / 2`` inside the image."""
    r = size * min(h, w) / 2
    c = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h])
    n = 8
    ang = np.sort(rng.uniform(0.0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.3, n)
    verts = c + np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]
    return np.vstack([jagged_path(rng, verts[i], verts[(i + 1) % n], 0.12, levels=4)[:-1] for i in range(n)])


PIECES = {"corner": corner_piece, "edge": edge_piece, "hole": hole}


@OPS.register("torn")
class Torn(DegradationOp):
    """Missing paper: torn corners, torn edge pieces or holes, filled with a light background, with a mask.

    Args:
        count: number of pieces (integer range).
        size: piece size as a fraction of the image's shorter side.
        kinds: the piece kinds to draw from (``corner``, ``edge``, ``hole``) ...
        weights: ... with these relative weights.
        texture: amplitude of the background's low-frequency texture.

    Returns ``(image, mask)``; the mask marks every pixel the op may have changed, no other pixel changes.
    """

    name = "torn"
    structured = True

    def __init__(self, count=(1, 2), size=(0.06, 0.22), kinds=KINDS, weights=(0.45, 0.35, 0.2),
                 texture=(0.01, 0.04)):
        self.count = tuple(count)
        self.size = tuple(size)
        self.kinds = tuple(kinds)
        self.weights = tuple(float(x) for x in weights)
        self.texture = tuple(texture)
        unknown = set(self.kinds) - set(PIECES)
        if unknown or len(self.weights) != len(self.kinds):
            raise ValueError(f"torn kinds must be among {sorted(PIECES)} with one weight each, got "
                             f"{self.kinds} / {self.weights}")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        n = randint(rng, self.count)
        p = np.asarray(self.weights) / sum(self.weights)
        return {
            "seed": field_seed(rng),
            "kinds": [str(self.kinds[int(rng.choice(len(self.kinds), p=p))]) for _ in range(n)],
            "sizes": [uniform(rng, self.size) for _ in range(n)],
            "colour": random_colour(rng, PAPER_WHITE, 0.06),
            "texture": uniform(rng, self.texture),
        }

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(image)
        h, w = image.shape[-2:]
        rng = numpy_rng(params["seed"])
        canvas = Canvas(h, w)
        for kind, size in zip(params["kinds"], params["sizes"], strict=True):
            canvas.polygon(PIECES[kind](rng, h, w, size))
        # background: flat colour + low-frequency mottling + a little fine grain
        coarse = rng.normal(0.0, 1.0, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * 0.7
        tex += rng.normal(0.0, 0.3, (h, w)).astype(np.float32)
        layer = torch.tensor(params["colour"], dtype=torch.float32).view(1, 3, 1, 1)
        layer = (layer + params["texture"] * torch.from_numpy(tex)[None, None]).clamp(0.0, 1.0)
        return composite(image, canvas.coverage(), layer, "normal")
