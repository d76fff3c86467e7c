"""The identity and the classical baselines: denoisers from scikit-image (and BM3D), optionally followed by
OpenCV inpainting of the damage mask.

    input             the degraded photo itself (what every method must beat)
    nlm               non-local means (Buades et al. 2005), skimage ``denoise_nl_means``: fast mode, 5x5
                      patches searched within 6 pixels, sigma = ``estimate_sigma`` (wavelet MAD, Donoho 1994,
                      averaged over channels), filter strength h = 0.8 sigma (scikit-image's recommendation for
                      the fast mode)
    bilateral         bilateral filter (Tomasi & Manduchi 1998), skimage ``denoise_bilateral``: sigma_color
                      0.1 (range, on [0, 1] values), sigma_spatial 2 px, window 2 ceil(3 sigma_spatial) + 1
    tv                total-variation denoising (Rudin, Osher & Fatemi 1992), skimage
                      ``denoise_tv_chambolle`` (Chambolle 2004) per channel, weight 0.1 (scikit-image's default)
    bm3d              BM3D (Dabov et al. 2007) from the ``bm3d`` package (optional extra ``baselines``;
                      non-commercial licence), ``bm3d_rgb`` with sigma = ``estimate_sigma``, profile "np"
    <denoiser>+inpaint the denoiser, then ``cv2.inpaint`` (Telea 2004, radius 3 px) of the damage mask (see
                      :mod:`.masks` for where the mask comes from: detected, or the suite's ground truth)

Every option can be changed with ``--set METHOD.OPTION=VALUE`` (e.g. ``--set tv.weight=0.05``); the values
used are in the manifest.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, ClassVar

import numpy as np
import torch

from ... import imageio
from ...restore.inpaint import INPAINT_RADIUS, inpaint_telea
from .base import METHODS, Method, MethodContext, MethodInput, MethodUnavailable
from .masks import DamageMasks


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


@METHODS.register("input")
class Identity(Method):
    name: ClassVar[str] = "input"
    kind: ClassVar[str] = "reference"
    description: ClassVar[str] = "the degraded input itself (identity)"

    def restore(self, item: MethodInput) -> torch.Tensor:
        return item.image.clone()


class ArrayDenoiser(Method):
    """A denoiser on ``H x W x 3`` float arrays in [0, 1]: subclasses implement :meth:`denoise`."""

    kind: ClassVar[str] = "classical"

    def denoise(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def restore(self, item: MethodInput) -> torch.Tensor:
        out = self.denoise(imageio.to_numpy(item.image).astype(np.float64))
        return imageio.to_tensor(np.clip(out, 0.0, 1.0).astype(np.float32))


def _require_pywavelets(method: str) -> None:
    """scikit-image imports PyWavelets only inside ``estimate_sigma``: check at build time, so that a missing
    package makes the method unavailable (an empty row with the reason) instead of failing on the first photo."""
    try:
        import pywt  # noqa: F401
    except ImportError:
        raise MethodUnavailable(method, "PyWavelets is not installed (scikit-image's estimate_sigma needs it): "
                                        "pip install PyWavelets") from None


def _estimate_sigma(array: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(array, average_sigmas=True, channel_axis=-1))


@METHODS.register("nlm")
class NonLocalMeans(ArrayDenoiser):
    name: ClassVar[str] = "nlm"
    description: ClassVar[str] = "non-local means (scikit-image), sigma estimated per photo"

    def __init__(self, ctx: MethodContext, patch_size: int = 5, patch_distance: int = 6, h_factor: float = 0.8,
                 fast_mode: bool = True):
        super().__init__(ctx)
        _require_pywavelets(self.name)
        self.settings = {"implementation": f"scikit-image {_version('scikit-image')} denoise_nl_means",
                         "patch_size": int(patch_size), "patch_distance": int(patch_distance),
                         "sigma": "estimate_sigma(average_sigmas=True) per photo",
                         "h": f"{float(h_factor)} * sigma", "h_factor": float(h_factor), "fast_mode": bool(fast_mode)}

    def denoise(self, array):
        from skimage.restoration import denoise_nl_means

        s = self.settings
        sigma = _estimate_sigma(array)
        return denoise_nl_means(array, h=s["h_factor"] * sigma, sigma=sigma, fast_mode=s["fast_mode"],
                                patch_size=s["patch_size"], patch_distance=s["patch_distance"], channel_axis=-1)


@METHODS.register("bilateral")
class Bilateral(ArrayDenoiser):
    name: ClassVar[str] = "bilateral"
    description: ClassVar[str] = "bilateral filter (scikit-image)"

    def __init__(self, ctx: MethodContext, sigma_color: float = 0.1, sigma_spatial: float = 2.0):
        super().__init__(ctx)
        self.settings = {"implementation": f"scikit-image {_version('scikit-image')} denoise_bilateral",
                         "sigma_color": float(sigma_color), "sigma_spatial": float(sigma_spatial),
                         "win_size": "max(5, 2 ceil(3 sigma_spatial) + 1) (scikit-image default)",
                         "mode": "constant (scikit-image default)"}

    def denoise(self, array):
        from skimage.restoration import denoise_bilateral

        s = self.settings
        return denoise_bilateral(array, sigma_color=s["sigma_color"], sigma_spatial=s["sigma_spatial"],
                                 channel_axis=-1)


@METHODS.register("tv")
class TotalVariation(ArrayDenoiser):
    name: ClassVar[str] = "tv"
    description: ClassVar[str] = "total-variation denoising, Chambolle's algorithm (scikit-image)"

    def __init__(self, ctx: MethodContext, weight: float = 0.1, max_num_iter: int = 200):
        super().__init__(ctx)
        self.settings = {"implementation": f"scikit-image {_version('scikit-image')} denoise_tv_chambolle",
                         "weight": float(weight), "max_num_iter": int(max_num_iter), "eps": 2e-4,
                         "channels": "each channel separately (channel_axis=-1)"}

    def denoise(self, array):
        from skimage.restoration import denoise_tv_chambolle

        s = self.settings
        return denoise_tv_chambolle(array, weight=s["weight"], max_num_iter=s["max_num_iter"], eps=s["eps"],
                                    channel_axis=-1)


@METHODS.register("bm3d")
class BM3D(ArrayDenoiser):
    name: ClassVar[str] = "bm3d"
    description: ClassVar[str] = "BM3D (bm3d package, optional), sigma estimated per photo"

    def __init__(self, ctx: MethodContext, profile: str = "np"):
        super().__init__(ctx)
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise MethodUnavailable(self.name, "the optional package bm3d is not installed "
                                               "(pip install 'oldphoto-bench[baselines]' or pip install bm3d)") from None
        _require_pywavelets(self.name)
        self.settings = {"implementation": f"bm3d {_version('bm3d')} bm3d_rgb (colour space 'opp')",
                         "profile": str(profile), "sigma": "estimate_sigma(average_sigmas=True) per photo",
                         "grayscale": "equal-channel photos: bm3d on one channel, replicated"}

    def denoise(self, array):
        import bm3d

        sigma = max(_estimate_sigma(array), 1e-3)
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2]):
            # bm3d_rgb's opponent transform divides by the chroma range, 0 on a gray photo (NaN output)
            return np.repeat(bm3d.bm3d(array[..., 0], sigma, profile=self.settings["profile"])[..., None], 3, -1)
        return bm3d.bm3d_rgb(array, sigma, profile=self.settings["profile"])


class DenoiseInpaint(Method):
    """``<denoiser>`` then Telea inpainting of the damage mask (see :mod:`.masks`)."""

    kind: ClassVar[str] = "classical"
    base: ClassVar[type[ArrayDenoiser]] = ArrayDenoiser

    def __init__(self, ctx: MethodContext, radius: int = INPAINT_RADIUS, **denoiser_options: Any):
        super().__init__(ctx)
        self.denoiser = self.base(ctx, **denoiser_options)
        self.masks = DamageMasks(ctx, self.name)
        self.settings = {**self.denoiser.settings, "inpaint": f"opencv {cv2_version()} cv2.inpaint INPAINT_TELEA",
                         "radius": int(radius), "mask_source": self.masks.source,
                         "mask": self.masks.description, "order": "denoise, then inpaint the mask"}

    def restore(self, item: MethodInput) -> torch.Tensor:
        mask = self.masks(item)
        return inpaint_telea(self.denoiser.restore(item), mask, self.settings["radius"])


def cv2_version() -> str:
    import cv2

    return cv2.__version__


def _with_inpaint(base: type[ArrayDenoiser]) -> type[DenoiseInpaint]:
    name = f"{base.name}+inpaint"
    cls = type(name.replace("+", "_").upper(), (DenoiseInpaint,), {
        "name": name, "base": base, "__module__": __name__,
        "description": f"{base.description}, then OpenCV Telea inpainting of the damage mask"})
    return METHODS.register(name)(cls)


NLM_INPAINT = _with_inpaint(NonLocalMeans)
BILATERAL_INPAINT = _with_inpaint(Bilateral)
TV_INPAINT = _with_inpaint(TotalVariation)
BM3D_INPAINT = _with_inpaint(BM3D)
