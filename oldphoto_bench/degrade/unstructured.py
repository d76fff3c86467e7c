"""Unstructured (global) degradations: blur, noise, low resolution, JPEG and grayscale.

These are the operations of the released code's synthetic pipeline (Bringing-Old-Photos-Back-to-Life,
``Global/data/online_dataset_for_old_photos.py``, ``online_add_degradation_v2``, and the grayscale step of
``Global/data/Load_Bigfile_Dataset.py``). Default sampling ranges are the released code's.

All ops work in torch on the image's own device (CPU or CUDA), keep ``float32`` and return ``(image, None)``
(no damage mask: every pixel is changed). Random fields are drawn from a CPU ``torch.Generator`` seeded with
``params["seed"]`` and then moved to the image's device, so outputs are identical across calls, replays and
devices' random number generators. Images are ``(N, 3, H, W)`` in ``[0, 1]``; ops are written for ``N = 1``
(the synthesizer's contract) but broadcast one parameter draw over a batch.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..imageio import gray_to_rgb, rgb_to_luma, to_tensor, to_uint8
from ..seeding import torch_generator
from .base import OPS, DegradationOp, check_image, field_seed, randint, uniform

Params = dict[str, Any]


def _pair(v: Any) -> tuple[Any, Any]:
    lo, hi = v
    if hi < lo:
        raise ValueError(f"range must be (lo, hi) with lo <= hi, got {tuple(v)}")
    return (lo, hi)


def _randn(image: torch.Tensor, seed: int, channels: int | None = None) -> torch.Tensor:
    """Standard normal field shaped like ``image`` (or with ``channels`` channels), drawn on CPU."""
    n, c, h, w = image.shape
    g = torch_generator(seed)
    return torch.randn((n, channels or c, h, w), generator=g, dtype=torch.float32).to(image.device)


def _rand(image: torch.Tensor, seed: int, channels: int) -> torch.Tensor:
    """Uniform [0, 1) field, ``(N, channels, H, W)``, drawn on CPU."""
    n, _, h, w = image.shape
    g = torch_generator(seed)
    return torch.rand((n, channels, h, w), generator=g, dtype=torch.float32).to(image.device)


def gaussian_kernel1d(size: int, sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised 1-D Gaussian taps ``k[i] = exp(-x_i^2 / (2 sigma^2)) / Z`` at ``x_i = i - (size-1)/2``.

    The same definition OpenCV's ``getGaussianKernel`` uses for an explicit ``sigma``.
    """
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (k / k.sum()).to(device=device, dtype=torch.float32)


def gaussian_blur(image: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, per channel, with reflect-101 borders (``cv2.BORDER_DEFAULT``).

    ``out = (x * k_h) * k_w`` where ``k`` is :func:`gaussian_kernel1d`; (N, C, H, W) -> same shape.
    """
    if kernel_size % 2 != 1 or kernel_size < 1:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    if kernel_size == 1:
        return image.clone()
    h, w = image.shape[-2:]
    r = kernel_size // 2
    taps = gaussian_kernel1d(kernel_size, sigma).tolist()
    # torch's "reflect" excludes the edge pixel (= OpenCV's BORDER_REFLECT_101); it needs r < size
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.pad(image, (r, r, r, r), mode=mode)
    # weighted sums of shifted views: several times faster on CPU than a depthwise conv2d with a 1-D kernel
    rows = x[..., :, 0:w] * taps[0]
    for i in range(1, kernel_size):
        rows.add_(x[..., :, i : i + w], alpha=taps[i])
    out = rows[..., 0:h, :] * taps[0]
    for i in range(1, kernel_size):
        out.add_(rows[..., i : i + h, :], alpha=taps[i])
    return out


@OPS.register()
class GaussianBlur(DegradationOp):
    """Gaussian blur with a kernel size drawn from ``kernel_sizes`` and ``sigma ~ U(sigma)``.

    Released code (``blur_image_v2``): ``cv2.GaussianBlur`` with kernel 3, 5 or 7 and sigma in U(1, 5).
    params: ``{"kernel_size": int, "sigma": float}``.
    """

    name = "gaussian_blur"

    def __init__(self, kernel_sizes: tuple[int, ...] = (3, 5, 7), sigma: tuple[float, float] = (1.0, 5.0)):
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not self.kernel_sizes or any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd positive ints, got {kernel_sizes}")
        self.sigma = _pair(sigma)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        k = self.kernel_sizes[int(rng.integers(len(self.kernel_sizes)))]
        return {"kernel_size": int(k), "sigma": uniform(rng, self.sigma)}

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        return gaussian_blur(image, int(params["kernel_size"]), float(params["sigma"])).clamp_(0.0, 1.0), None


@OPS.register()
class GaussianNoise(DegradationOp):
    """Additive white Gaussian noise: ``out = clip(x + (sigma / 255) * n, 0, 1)``, ``n ~ N(0, 1)`` per value.

    Released code (``synthesize_gaussian``): sigma ~ U(5, 50) on the 0-255 scale.
    params: ``{"sigma": float (0-255 scale), "seed": int}``.
    """

    name = "gaussian_noise"

    def __init__(self, sigma: tuple[float, float] = (5.0, 50.0)):
        self.sigma = _pair(sigma)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"sigma": uniform(rng, self.sigma), "seed": field_seed(rng)}

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        noise = _randn(image, int(params["seed"])).mul_(float(params["sigma"]) / 255.0)
        return noise.add_(image).clamp_(0.0, 1.0), None


@OPS.register()
class SpeckleNoise(GaussianNoise):
    """Multiplicative (speckle) noise: ``out = clip(x + x * (sigma / 255) * n, 0, 1)``, ``n ~ N(0, 1)``.

    Released code (``synthesize_speckle``): sigma ~ U(5, 50) on the 0-255 scale. Same ranges and params as
    :class:`GaussianNoise` (``{"sigma", "seed"}``); only the noise model differs.
    """

    name = "speckle_noise"

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        noise = _randn(image, int(params["seed"])).mul_(float(params["sigma"]) / 255.0)
        return noise.add_(1.0).mul_(image).clamp_(0.0, 1.0), None


@OPS.register()
class SaltPepper(DegradationOp):
    """Salt-and-pepper noise: a fraction ``amount`` of pixels is set to 1 (salt) or 0 (pepper).

    A pixel is hit when ``u < amount`` for ``u ~ U[0, 1)``, and salted when ``u < amount * salt_share``, so the
    expected hit fraction is ``amount`` and the salt share among hits is ``salt_share``. All three channels of
    a hit pixel change together (the released code's ``synthesize_salt_pepper`` draws per channel value).
    Released code ranges: amount ~ U(0, 0.01), salt share ~ U(0.3, 0.8).
    params: ``{"amount": float, "salt_share": float, "seed": int}``.
    """

    name = "salt_pepper"

    def __init__(self, amount: tuple[float, float] = (0.0, 0.01), salt_share: tuple[float, float] = (0.3, 0.8)):
        self.amount = _pair(amount)
        self.salt_share = _pair(salt_share)
        if not (0.0 <= self.amount[0] and self.amount[1] <= 1.0 and 0.0 <= self.salt_share[0]
                and self.salt_share[1] <= 1.0):
            raise ValueError(f"amount and salt_share must lie in [0, 1], got {amount}, {salt_share}")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"amount": uniform(rng, self.amount), "salt_share": uniform(rng, self.salt_share),
                "seed": field_seed(rng)}

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        amount = float(params["amount"])
        u = _rand(image, int(params["seed"]), channels=1)
        hit = (u < amount).to(image.dtype)  # (N, 1, H, W), broadcast over channels
        salt = (u < amount * float(params["salt_share"])).to(image.dtype)
        # hit pixels: salt -> 1, pepper -> 0; others keep x
        return torch.addcmul(salt, image, 1.0 - hit), None


@OPS.register()
class LowResolution(DegradationOp):
    """Down-sample with antialiased bicubic, then back up to ``(H, W)`` with nearest or bilinear.

    Released code (``synthesize_low_resolution``): ``new_w = randint(int(w / 2), w)`` (same for h), PIL
    bicubic down, then PIL nearest or bilinear up with probability 1/2 each. Here ``new = randint(int(size *
    scale[0]), int(size * scale[1]))``; torch's antialiased bicubic uses PIL's kernel (a = -0.5) and
    ``nearest-exact`` is PIL's nearest. A side that keeps its size is not resampled.
    params: ``{"new_h": int, "new_w": int, "up": "nearest" | "bilinear"}``.
    """

    name = "low_resolution"
    UP_MODES = ("nearest", "bilinear")

    def __init__(self, scale: tuple[float, float] = (0.5, 1.0)):
        self.scale = _pair(scale)
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {scale}")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        lo, hi = self.scale
        new_w = randint(rng, (max(1, int(width * lo)), max(1, int(width * hi))))
        new_h = randint(rng, (max(1, int(height * lo)), max(1, int(height * hi))))
        up = self.UP_MODES[int(rng.random() >= 0.5)]
        return {"new_h": int(new_h), "new_w": int(new_w), "up": up}

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        h, w = image.shape[-2:]
        size = (int(params["new_h"]), int(params["new_w"]))
        up = params["up"]
        if up not in self.UP_MODES:
            raise ValueError(f"unknown up-sampling mode {up!r}; valid: {', '.join(self.UP_MODES)}")
        if size == (h, w):
            return image.clone(), None
        small = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
        small = small.clamp_(0.0, 1.0)  # bicubic overshoots; PIL stores the small image as uint8 in [0, 255]
        if up == "nearest":
            out = F.interpolate(small, size=(h, w), mode="nearest-exact")
        else:
            out = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        return out.clamp_(0.0, 1.0), None


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode each image as JPEG at ``quality`` with PIL (4:2:0 chroma subsampling, PIL's default) and decode.

    Pixels are quantised to uint8 by rounding to nearest (:func:`~oldphoto_bench.imageio.to_uint8`); the
    result returns to the input's device as float32 in [0, 1].
    """
    outs = []
    for i in range(image.shape[0]):
        buf = io.BytesIO()
        Image.fromarray(to_uint8(image[i])).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as im:
            outs.append(to_tensor(np.asarray(im.convert("RGB"))))
    return torch.cat(outs).to(image.device)


@OPS.register()
class Jpeg(DegradationOp):
    """JPEG compression at an integer quality drawn from ``quality`` (inclusive).

    Released code (``convertToJpeg``): PIL JPEG at ``random.randint(40, 100)``, PIL's default 4:2:0 chroma
    subsampling. Runs on CPU (PIL), result moved back to the image's device.
    params: ``{"quality": int}``.
    """

    name = "jpeg"

    def __init__(self, quality: tuple[int, int] = (40, 100)):
        lo, hi = _pair(quality)
        self.quality = (int(lo), int(hi))
        if not 1 <= self.quality[0] <= self.quality[1] <= 100:
            raise ValueError(f"quality must be within [1, 100], got {quality}")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"quality": randint(rng, self.quality)}

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        return jpeg_roundtrip(image, int(params["quality"])), None


@OPS.register()
class Grayscale(DegradationOp):
    """Convert to luma and back to three channels: ``out_c = 0.299 R + 0.587 G + 0.114 B`` for every c.

    Released code (``Load_Bigfile_Dataset.py``): ``img.convert("L").convert("RGB")`` with probability 0.1
    (the probability lives in the preset). params: ``{}``.
    """

    name = "grayscale"

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {}

    def apply(self, image: torch.Tensor, params: Params) -> tuple[torch.Tensor, None]:
        check_image(image)
        return gray_to_rgb(rgb_to_luma(image)).clamp_(0.0, 1.0), None


__all__ = ["GaussianBlur", "GaussianNoise", "Grayscale", "Jpeg", "LowResolution", "SaltPepper", "SpeckleNoise",
           "gaussian_blur", "gaussian_kernel1d", "jpeg_roundtrip"]
