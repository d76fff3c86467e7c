"""Geometry and rasterisation shared by the structured defects (scratches, cracks, dust, tears).

Shapes are drawn with OpenCV on a CPU ``uint8`` canvas ``s`` times finer than the image and area-averaged
down to the image grid, which gives anti-aliased, sub-pixel-wide strokes whose *coverage* ``alpha`` lives
exactly on the image's pixels. :func:`composite` then blends a colour layer with that coverage and
returns the damage mask ``alpha > 0``; pixels outside the mask are copied from the input unchanged.

Coordinates are continuous image coordinates ``(x, y)`` in pixels: pixel ``(row i, col j)`` covers
``[j, j + 1) x [i, i + 1)``, so the image spans ``[0, W] x [0, H]``. OpenCV's rasteriser includes the
right / bottom boundary of a shape, so shapes come out up to one canvas pixel (``1 / s`` image px) wider
than specified; the masks are unaffected (they are read off the rendered coverage).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .blend import BlendFn, blend

SHIFT = 4  # OpenCV fixed-point bits for sub-canvas-pixel vertex positions
# Coverage below this is dropped (set to exactly 0) so that the mask marks visible damage only: an alpha of
# 1/255 moves a pixel by at most 1/255, i.e. below one 8-bit grey level.
ALPHA_MIN = 1.0 / 255.0


def supersampling(height: int, width: int) -> int:
    """Canvas oversampling factor: 4 up to 1024 px per side (0.25 px stroke-width steps), else 2 (speed)."""
    return 4 if max(height, width) <= 1024 else 2


class Canvas:
    """A ``uint8`` canvas ``s`` times finer than an ``height x width`` image; values are coverage x 255."""

    def __init__(self, height: int, width: int, s: int | None = None):
        self.h, self.w = int(height), int(width)
        self.s = int(s or supersampling(height, width))
        self.data = np.zeros((self.h * self.s, self.w * self.s), np.uint8)

    def _fixed(self, xy: np.ndarray) -> np.ndarray:
        # continuous image coords -> OpenCV canvas pixel-centre coords in fixed point
        return np.round((np.asarray(xy, np.float64) * self.s - 0.5) * (1 << SHIFT)).astype(np.int32)

    def polyline(self, xy: np.ndarray, widths: np.ndarray | float, values: np.ndarray | float) -> None:
        """Draw the polyline ``xy`` (N, 2); segment ``k`` gets width ``widths[k]`` px and coverage ``values[k]``.

        Segments are drawn with round caps, so varying widths join smoothly.
        """
        pts = [tuple(p) for p in self._fixed(xy).tolist()]
        n = len(pts) - 1
        if n < 1:
            return
        th = np.broadcast_to(np.maximum(np.round(np.asarray(widths, np.float64) * self.s), 1), (n,))
        val = np.broadcast_to(np.clip(np.round(np.asarray(values, np.float64) * 255), 0, 255), (n,))
        for k, (t, v) in enumerate(zip(th.astype(int).tolist(), val.astype(int).tolist(), strict=True)):
            if v > 0:
                cv2.line(self.data, pts[k], pts[k + 1], v, t, cv2.LINE_8, SHIFT)

    def polygon(self, xy: np.ndarray, value: float = 1.0) -> None:
        """Fill the polygon ``xy`` (N, 2) with coverage ``value``."""
        cv2.fillPoly(self.data, [self._fixed(xy)], int(round(value * 255)), cv2.LINE_8, SHIFT)

    def ellipses(self, centres: np.ndarray, axes: np.ndarray, angles_deg: np.ndarray, values: np.ndarray) -> None:
        """Fill ``K`` ellipses: centres (K, 2), semi-axes (K, 2) px, rotations (K,) degrees, coverages (K,)."""
        c = self._fixed(centres).reshape(-1, 2).tolist()
        ax = np.maximum(np.round(np.asarray(axes, np.float64) * self.s * (1 << SHIFT)), 1).astype(int)
        val = np.clip(np.round(np.asarray(values, np.float64) * 255), 0, 255).astype(int).tolist()
        ang = np.asarray(angles_deg, np.float64).reshape(-1).tolist()
        for ck, ak, gk, vk in zip(c, ax.reshape(-1, 2).tolist(), ang, val, strict=True):
            if vk > 0:
                cv2.ellipse(self.data, tuple(ck), tuple(ak), gk, 0.0, 360.0, vk, -1, cv2.LINE_8, SHIFT)

    def coverage(self) -> np.ndarray:
        """(H, W) float32 coverage in ``[0, 1]``: the canvas's s x s block means (rounded to 1/255 after each
        2x halving), with values below ALPHA_MIN set to 0."""
        small, s = self.data, self.s
        while s % 2 == 0:  # 2x area halvings hit OpenCV's fast path (~20x faster than one 4x resize)
            s //= 2
            small = cv2.resize(small, (self.w * s, self.h * s), interpolation=cv2.INTER_AREA)
        if s > 1:
            small = cv2.resize(small, (self.w, self.h), interpolation=cv2.INTER_AREA)
        alpha = small.astype(np.float32) / 255.0
        alpha[alpha < ALPHA_MIN] = 0.0
        return alpha


def composite(image: torch.Tensor, alpha: np.ndarray | torch.Tensor, layer: torch.Tensor | list[float],
              mode: str | BlendFn, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend ``layer`` (RGB list, (1, 3, 1, 1) or (1, 3, H, W)) over ``image`` (1, 3, H, W) where coverage
    ``alpha`` (H, W) is positive.

    Returns ``(out, mask)`` with ``mask = alpha > 0`` as (1, 1, H, W) bool (OR-ed into ``mask`` if given) and
    ``out = where(mask, blend(image, layer, alpha, mode), image)``: the mask marks every pixel the op may
    have changed, and no pixel outside it changes (bit for bit). Only the masked pixels are computed
    (defects are sparse), which gives the same values as the dense ``where``.
    """
    h, w = image.shape[-2:]
    a = torch.as_tensor(alpha, dtype=torch.float32).to(image.device).reshape(1, 1, h, w)
    if not torch.is_tensor(layer):
        layer = torch.tensor(layer, dtype=torch.float32).view(1, 3, 1, 1)
    layer = layer.to(device=image.device, dtype=image.dtype)
    m = a > 0
    idx = m.view(-1).nonzero().squeeze(1)
    out = image.clone(memory_format=torch.contiguous_format)
    flat = out.view(1, 3, h * w)
    px = flat[:, :, idx]
    lay = layer.reshape(1, 3, h * w)[:, :, idx] if layer.shape[-2:] == (h, w) else layer.view(1, 3, 1)
    flat[:, :, idx] = blend(px, lay, a.view(1, 1, h * w)[:, :, idx], mode)
    return out, (m if mask is None else mask | m)


# ---- geometry ---------------------------------------------------------------------------------------------
def smooth_noise_1d(rng: np.random.Generator, n: int, knots: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """``n`` samples of a smooth random curve in ``[lo, hi]``: ``knots`` uniform values, cosine-interpolated."""
    knots = max(2, int(knots))
    v = rng.uniform(lo, hi, knots)
    t = np.linspace(0.0, knots - 1, n)
    i = np.minimum(t.astype(int), knots - 2)
    f = (1 - np.cos(np.pi * (t - i))) / 2
    return v[i] * (1 - f) + v[i + 1] * f


def cubic_bezier(p0, p1, p2, p3, n: int) -> np.ndarray:
    """``n`` points (n, 2) on the cubic Bezier ``B(t) = (1-t)^3 p0 + 3(1-t)^2 t p1 + 3(1-t) t^2 p2 + t^3 p3``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2, p3 = (np.asarray(p, np.float64) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def jagged_path(rng: np.random.Generator, p0, p1, roughness: float, levels: int = 6) -> np.ndarray:
    """A fractal (midpoint-displacement) path from ``p0`` to ``p1``: (2**levels + 1, 2) points.

    At level ``k`` each midpoint moves perpendicular to the chord by ``N(0, (roughness * L / 2**k)^2)``
    with ``L`` the chord length, so the boundary is rough at every scale, like torn paper.
    """
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    d = p1 - p0
    length = float(np.hypot(*d)) + 1e-9
    normal = np.array([-d[1], d[0]]) / length
    pts = np.stack([p0, p1])
    for k in range(levels):
        mid = (pts[:-1] + pts[1:]) / 2 + rng.normal(0.0, roughness * length / 2 ** (k + 1), (len(pts) - 1, 1)) * normal
        out = np.empty((2 * len(pts) - 1, 2))
        out[0::2], out[1::2] = pts, mid
        pts = out
    return pts


def random_walk(rng: np.random.Generator, start, heading: float, steps: int, step: float, wobble: float,
                pull: float = 0.15, kink_prob: float = 0.0, kink: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """A jagged walk of ``steps`` steps of length ``step`` px: returns points (steps + 1, 2) and headings.

    The heading follows ``theta_{k+1} = theta_k + pull (theta0 - theta_k) + N(0, wobble^2)``: it wanders
    locally but keeps a general direction ``theta0``, which itself turns by ``+-U(kink/2, kink)`` rad with
    probability ``kink_prob`` per step (the sudden bends of a crack).
    """
    theta0 = float(heading)
    noise = rng.normal(0.0, wobble, steps)
    kinks = rng.random(steps) < kink_prob
    turns = rng.choice([-1.0, 1.0], steps) * rng.uniform(kink / 2, kink, steps)
    th = np.empty(steps)
    theta = theta0
    for k in range(steps):  # sequential by nature; steps are at most a few hundred
        if kinks[k]:
            theta0 += turns[k]
        theta = theta + pull * (theta0 - theta) + noise[k]
        th[k] = theta
    pts = np.empty((steps + 1, 2))
    pts[0] = start
    pts[1:] = np.asarray(start, np.float64) + np.cumsum(step * np.stack([np.cos(th), np.sin(th)], 1), 0)
    return pts, th


def random_colour(rng: np.random.Generator, base: tuple[float, float, float], jitter: float) -> list[float]:
    """``base`` RGB with a shared brightness jitter and a small per-channel tint, clipped to [0, 1]."""
    c = np.asarray(base) + rng.uniform(-jitter, jitter) + rng.uniform(-jitter / 3, jitter / 3, 3)
    return [float(v) for v in np.clip(c, 0.0, 1.0)]
