"""Ageing and texture: global (unmasked) ops that make a clean photo look like an old print.

The paper (Wan et al. 2020, Sec. 4.1) blends 55 collected paper textures onto clean photos with the modes
addition, screen, lighten and multiply; the textures were never released, so :class:`PaperTexture` makes
them procedurally. The tone ops (fade, yellowing, sepia, contrast/brightness, vignette) and film grain are
this re-implementation's additions for the ``paper`` preset's ageing stage. All ops return ``mask=None``:
they change the whole image, so they mark no damaged region.

Images are (1, 3, H, W) float32 RGB in [0, 1]; every output is clamped to [0, 1]. Random fields are
generated on CPU from ``params["seed"]`` and moved to the image's device.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from ..imageio import rgb_to_luma
from ..seeding import numpy_rng
from .base import OPS, DegradationOp, check_image, field_seed, uniform
from .blend import blend

# The classic sepia-tone matrix (as in common image editors): rows give output R, G, B from input RGB.
SEPIA_MATRIX = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))
TEXTURE_MODES = ("multiply", "overlay", "screen", "lighten", "addition")


def _to(image: torch.Tensor, array: np.ndarray) -> torch.Tensor:
    """(H, W) numpy field -> (1, 1, H, W) tensor on the image's device and dtype."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=image.device, dtype=image.dtype)[None, None]


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 4,
                persistence: float = 0.5) -> np.ndarray:
    """Fractal value noise (H, W) float32 with zero mean and unit std.

    Octave ``k`` is uniform noise on a grid of ``cell / 2^k`` px cells, bicubically upsampled, weighted by
    ``persistence^k``: ``n = sum_k persistence^k U_k``.
    """
    out = np.zeros((h, w), np.float32)
    for k in range(octaves):
        c = max(1.0, cell / 2**k)
        grid = rng.random((int(np.ceil(h / c)) + 2, int(np.ceil(w / c)) + 2)).astype(np.float32)
        out += persistence**k * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return (out - out.mean()) / (out.std() + 1e-6)


def fibres(rng: np.random.Generator, h: int, w: int, count: int) -> np.ndarray:
    """(H, W) float32 field of ``count`` short faint curly fibres, each +-1 (light or dark), anti-aliased."""
    canvas = np.zeros((h, w), np.float32)
    diag = float(np.hypot(h, w))
    for _ in range(count):
        n = 8
        length = diag * rng.uniform(0.01, 0.05)
        ang = rng.uniform(-np.pi, np.pi) + np.cumsum(rng.normal(0.0, 0.3, n))
        pts = rng.uniform(0.0, 1.0, 2) * (w, h) + np.cumsum(np.stack([np.cos(ang), np.sin(ang)], 1) * length / n, 0)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        cv2.polylines(canvas, [np.round(pts * 16).astype(np.int32)], False, sign, 1, cv2.LINE_AA, 4)
    return canvas


@OPS.register("paper_texture")
class PaperTexture(DegradationOp):
    """Procedural paper / print texture blended over the photo (global, ``mask=None``).

    The texture ``t`` in [0, 1] combines fractal value noise (grain of the paper), a coarse mottling
    (uneven ageing) and faint fibres. The layer depends on the mode so that every mode shows texture:
    multiply ``L = (1 - 0.6 t) c``, overlay ``L = t``, screen / lighten ``L = t c``, addition
    ``L = 0.5 t^2 c`` with ``c`` a warm paper tint; ``out = blend(x, L, strength, mode)``
    (see :func:`~oldphoto_bench.degrade.blend.blend`).

    Args:
        strength: blend opacity (the paper's textures at a modest opacity).
        scale: size of the grain's coarsest cells as a fraction of the shorter side.
        modes: blend modes to choose from (the paper's addition, screen, lighten, multiply, plus overlay).
        fibre_density: fibres per 10,000 pixels.
    """

    name = "paper_texture"

    def __init__(self, strength=(0.05, 0.3), scale=(0.02, 0.1), modes=TEXTURE_MODES, fibre_density: float = 1.0):
        self.strength = tuple(strength)
        self.scale = tuple(scale)
        self.modes = tuple(modes)
        self.fibre_density = float(fibre_density)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {
            "seed": field_seed(rng),
            "mode": str(self.modes[int(rng.integers(len(self.modes)))]),
            "strength": uniform(rng, self.strength),
            "scale": uniform(rng, self.scale),
            "mottle": uniform(rng, (0.2, 0.6)),
            "fibres": int(round(self.fibre_density * height * width / 1e4 * rng.uniform(0.5, 1.5))),
            "tint": [1.0, uniform(rng, (0.93, 0.99)), uniform(rng, (0.8, 0.95))],
        }

    def texture(self, params: dict[str, Any], h: int, w: int) -> np.ndarray:
        """The (H, W) float32 texture ``t`` in [0, 1] for ``params``."""
        rng = numpy_rng(params["seed"])
        m = min(h, w)
        t = value_noise(rng, h, w, params["scale"] * m, octaves=4)
        t += params["mottle"] * 2.0 * value_noise(rng, h, w, m / 3.0, octaves=2)
        t += 1.5 * fibres(rng, h, w, params["fibres"])
        return np.clip(0.5 + 0.14 * t, 0.0, 1.0)

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        t = _to(image, self.texture(params, *image.shape[-2:]))
        tint = torch.tensor(params["tint"], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        mode = params["mode"]
        layer = {"multiply": (1.0 - 0.6 * t) * tint, "overlay": t.expand(-1, 3, -1, -1),
                 "addition": 0.5 * t * t * tint}.get(mode, t * tint)
        return blend(image, layer, params["strength"], mode), None


@OPS.register("film_grain")
class FilmGrain(DegradationOp):
    """Monochrome, slightly blurred, luminance-dependent grain (global, ``mask=None``).

    ``out = x + intensity * n * g(Y)`` with ``n`` unit-variance Gaussian noise blurred by a Gaussian of
    ``sigma`` px (grain clumps), the same for all channels, and ``g(Y) = 0.4 + 2.4 Y (1 - Y)`` (1 at mid
    grey, 0.4 at black / white: grain shows most in the mid-tones), Y the BT.601 luma.

    Args:
        intensity: standard deviation of the grain at mid grey.
        sigma: blur of the grain in pixels.
    """

    name = "film_grain"

    def __init__(self, intensity=(0.01, 0.06), sigma=(0.4, 1.0)):
        self.intensity = tuple(intensity)
        self.sigma = tuple(sigma)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {"seed": field_seed(rng), "intensity": uniform(rng, self.intensity), "sigma": uniform(rng, self.sigma)}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        h, w = image.shape[-2:]
        n = numpy_rng(params["seed"]).standard_normal((h, w), dtype=np.float32)
        n = cv2.GaussianBlur(n, (0, 0), params["sigma"])
        n /= n.std() + 1e-6
        y = rgb_to_luma(image)
        return (image + params["intensity"] * _to(image, n) * (0.4 + 2.4 * y * (1.0 - y))).clamp(0.0, 1.0), None


@OPS.register("fade")
class Fade(DegradationOp):
    """Faded print: contrast squeezed between a lifted black and a lowered white (global).

    ``out = lo + (hi - lo) x`` with ``lo = amount * black`` and ``hi = 1 - amount * white``; ``amount = 0`` is
    the identity (bit for bit).

    Args:
        amount: overall fading.
        black: share of ``amount`` by which black is lifted.
        white: share of ``amount`` by which white is lowered (prints lose their blacks more than whites).
    """

    name = "fade"

    def __init__(self, amount=(0.1, 0.5), black=(0.3, 0.6), white=(0.05, 0.3)):
        self.amount = tuple(amount)
        self.black = tuple(black)
        self.white = tuple(white)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {"amount": uniform(rng, self.amount), "black": uniform(rng, self.black),
                "white": uniform(rng, self.white)}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        lo = params["amount"] * params["black"]
        hi = 1.0 - params["amount"] * params["white"]
        return (lo + (hi - lo) * image).clamp(0.0, 1.0), None


@OPS.register("yellowing")
class Yellowing(DegradationOp):
    """Yellowed / browned print: multiply by a yellow tint at opacity ``amount`` (global).

    ``out = (1 - amount) x + amount x c`` with ``c = (1, g, b)``, ``g`` in ``tint_green``, ``b`` in
    ``tint_blue``; ``amount = 0`` is the identity.
    """

    name = "yellowing"

    def __init__(self, amount=(0.1, 0.5), tint_green=(0.82, 0.95), tint_blue=(0.5, 0.75)):
        self.amount = tuple(amount)
        self.tint_green = tuple(tint_green)
        self.tint_blue = tuple(tint_blue)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {"amount": uniform(rng, self.amount),
                "tint": [1.0, uniform(rng, self.tint_green), uniform(rng, self.tint_blue)]}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        tint = torch.tensor(params["tint"], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        return blend(image, tint, params["amount"], "multiply"), None


@OPS.register("sepia")
class Sepia(DegradationOp):
    """Sepia toning: ``out = (1 - amount) x + amount clamp(M x)`` with ``M`` = :data:`SEPIA_MATRIX` (global);
    ``amount = 0`` is the identity."""

    name = "sepia"

    def __init__(self, amount=(0.3, 1.0)):
        self.amount = tuple(amount)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {"amount": uniform(rng, self.amount)}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        m = torch.tensor(SEPIA_MATRIX, dtype=image.dtype, device=image.device)
        toned = torch.einsum("oc,nchw->nohw", m, image).clamp(0.0, 1.0)
        return blend(image, toned, params["amount"], "normal"), None


@OPS.register("contrast_brightness")
class ContrastBrightness(DegradationOp):
    """``out = clamp((x - m) contrast + m + brightness)`` with ``m`` the image's mean luma (global)."""

    name = "contrast_brightness"

    def __init__(self, contrast=(0.7, 1.3), brightness=(-0.1, 0.1)):
        self.contrast = tuple(contrast)
        self.brightness = tuple(brightness)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {"contrast": uniform(rng, self.contrast), "brightness": uniform(rng, self.brightness)}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        m = rgb_to_luma(image).mean(dim=(1, 2, 3), keepdim=True)
        return ((image - m) * params["contrast"] + m + params["brightness"]).clamp(0.0, 1.0), None


@OPS.register("vignette")
class Vignette(DegradationOp):
    """Darkened corners: ``out = x (1 - strength * f(r))`` (global).

    ``r`` is the distance from a slightly off-centre point, normalised so the corners are near 1, and
    ``f(r) = clamp((r - inner) / (1 - inner), 0, 1)^2``.
    """

    name = "vignette"

    def __init__(self, strength=(0.1, 0.5), inner=(0.3, 0.6)):
        self.strength = tuple(strength)
        self.inner = tuple(inner)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        return {"strength": uniform(rng, self.strength), "inner": uniform(rng, self.inner),
                "centre": [uniform(rng, (0.4, 0.6)), uniform(rng, (0.4, 0.6))]}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, None]:
        check_image(image)
        h, w = image.shape[-2:]
        yy = torch.linspace(0.5 / h, 1 - 0.5 / h, h, device=image.device).view(h, 1) - params["centre"][0]
        xx = torch.linspace(0.5 / w, 1 - 0.5 / w, w, device=image.device).view(1, w) - params["centre"][1]
        r = torch.sqrt(xx**2 + yy**2) / np.sqrt(0.5)
        f = ((r - params["inner"]) / (1 - params["inner"])).clamp(0.0, 1.0) ** 2
        return (image * (1.0 - params["strength"] * f)).clamp(0.0, 1.0), None
