"""Blending an enhanced face back: colour histogram matching, a feathered mask, inverse warp, alpha blend.

As the released system (Face_Detection/align_warp_back_multiple_dlib.py): the enhanced crop's colours are
matched to the stage-1 crop channel by channel, the crop is warped back with the inverse alignment, and it
is blended through an eroded, blurred copy of the crop's square. The mask is built in crop coordinates, so
its erosion and feathering scale with the face; pixels where the warped mask is 0 are copied unchanged.

Histogram matching equalises the crop's colours as a whole, not where the mask fades out: an enhancer that
darkens the hair and brightens the cheek still leaves a colour step along the mask's edge. With the stage-1
crop as ``reference``, :func:`paste_back` therefore also hands the low frequencies (a Gaussian of sigma
:data:`LOWPASS_FRACTION` of the crop side) back to the surrounding restoration: in the fade band only the
enhancer's fine detail is blended, and its own colours come back over a second, inner band.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .align import crop_footprint, unwarp

# Mask margins as fractions of the crop side (4 px and sigma 6.4 px at 256): erode keeps the blend off the
# crop's edge (where padding and warping blur sit); feather is the Gaussian sigma of the soft transition.
ERODE_FRACTION = 1 / 64
FEATHER_FRACTION = 1 / 40
# Sigma of the low-pass that separates colour/shading from detail (8 px at 256: an eye is about 30 px wide).
LOWPASS_FRACTION = 1 / 32


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` in torch: piecewise-linear through ``(xp, fp)`` (xp increasing), constant outside."""
    idx = torch.searchsorted(xp, x, right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[idx - 1], xp[idx], fp[idx - 1], fp[idx]
    t = ((x - x0) / (x1 - x0).clamp_min(torch.finfo(x.dtype).tiny)).clamp(0.0, 1.0)
    out = f0 + t * (f1 - f0)
    out = torch.where(x <= xp[0], fp[0], out)
    return torch.where(x >= xp[-1], fp[-1], out)


def match_channel(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Map ``source`` values so their empirical CDF follows ``reference``'s (any shapes; float).

    Each distinct source value ``v`` with cumulative fraction ``q = P(source <= v)`` is sent to the
    reference value at the same cumulative fraction, linearly interpolated between the reference's
    distinct values: ``T(v) = interp(q, Q_ref, values_ref)``.
    """
    src = source.reshape(-1).double()
    s_vals, s_inv, s_counts = torch.unique(src, return_inverse=True, return_counts=True)
    r_vals, r_counts = torch.unique(reference.reshape(-1).double(), return_counts=True)
    s_q = torch.cumsum(s_counts, 0).double() / src.numel()
    r_q = torch.cumsum(r_counts, 0).double() / reference.numel()
    if len(r_vals) == 1:
        mapped = r_vals.expand_as(s_vals)
    else:
        mapped = _interp(s_q, r_q, r_vals)
    return mapped[s_inv].reshape(source.shape).to(source.dtype)


def match_histograms(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-channel CDF matching of ``source`` ``(N, C, H, W)`` to ``reference`` ``(N, C, H', W')`` (per image)."""
    if source.dim() != 4 or reference.dim() != 4 or source.shape[:2] != reference.shape[:2]:
        raise ValueError(f"need (N, C, H, W) images with equal N and C, got {tuple(source.shape)} and "
                         f"{tuple(reference.shape)}")
    out = torch.empty_like(source)
    for n in range(source.shape[0]):
        for c in range(source.shape[1]):
            out[n, c] = match_channel(source[n, c], reference[n, c])
    return out


def gaussian_kernel1d(sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised Gaussian taps ``exp(-k^2 / 2 sigma^2)``, ``k = -r..r``, ``r = ceil(3 sigma)``."""
    r = max(1, math.ceil(3.0 * sigma))
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(k**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def feather_mask(size: int, erode: float | None = None, feather: float | None = None) -> torch.Tensor:
    """``(1, 1, size, size)`` blend weights in crop coordinates: a square eroded so that, after a Gaussian
    blur of sigma ``feather`` (truncated at radius r = ceil(3 sigma)), the weights are exactly 0 within
    ``erode`` px of the crop edge and exactly 1 from ``erode + 2r`` px inwards. Defaults scale with size."""
    erode = size * ERODE_FRACTION if erode is None else erode
    feather = size * FEATHER_FRACTION if feather is None else feather
    e = math.ceil(erode)
    mask = torch.zeros(1, 1, size, size)
    if feather <= 0:
        mask[..., e:size - e, e:size - e] = 1.0
        return mask
    g = gaussian_kernel1d(feather)
    r = (len(g) - 1) // 2
    inner = e + r
    if 2 * (inner + r) >= size:
        raise ValueError(f"crop of {size} px is too small for erode {erode} and feather {feather}")
    mask[..., inner:size - inner, inner:size - inner] = 1.0
    mask = F.conv2d(F.pad(mask, (r, r, 0, 0)), g.view(1, 1, 1, -1))
    mask = F.conv2d(F.pad(mask, (0, 0, r, r)), g.view(1, 1, -1, 1))
    # Outside the kernel's reach of the square the sums are exactly 0; inside it, the taps' float sum may
    # miss 1 by an ulp, so the core is set to exactly 1.
    core = inner + r
    mask[..., core:size - core, core:size - core] = 1.0
    return mask.clamp_(0.0, 1.0)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with reflected borders (no darkening at the crop's edge)."""
    g = gaussian_kernel1d(sigma, dtype=x.dtype, device=x.device)
    r = min((len(g) - 1) // 2, x.shape[-1] - 1, x.shape[-2] - 1)
    g = g[(len(g) - 1) // 2 - r:(len(g) - 1) // 2 + r + 1]
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def inner_mask(size: int, erode: float | None = None, feather: float | None = None) -> torch.Tensor:
    """Where the enhancer's own low frequencies are kept: 0 wherever :func:`feather_mask` is below 1, then
    rising over the same feather to 1 (``(1, 1, size, size)``)."""
    erode = size * ERODE_FRACTION if erode is None else erode
    feather = size * FEATHER_FRACTION if feather is None else feather
    r = (len(gaussian_kernel1d(feather)) - 1) // 2 if feather > 0 else 0
    return feather_mask(size, math.ceil(erode) + 2 * r, feather)


def match_low_frequencies(crop: torch.Tensor, reference: torch.Tensor, keep: torch.Tensor,
                          sigma: float) -> torch.Tensor:
    """``crop - (1 - keep) * blur(crop - reference)``: where ``keep`` is 0 the crop takes the reference's
    colours and shading (its Gaussian low-pass of ``sigma``) and keeps only its own finer detail."""
    return crop - (1.0 - keep) * gaussian_blur(crop - reference, sigma)


def paste_back(image: torch.Tensor, crop: torch.Tensor, matrix: np.ndarray, erode: float | None = None,
               feather: float | None = None, reference: torch.Tensor | None = None,
               lowpass: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend an aligned ``crop`` ``(1, C, S, S)`` back into ``image`` ``(1, C, H, W)``.

    ``out = a * unwarp(crop) + (1 - a) * image`` with ``a = unwarp(feather_mask(S))``; where ``a == 0`` the
    image's pixels are copied bit for bit. Returns ``(out, a)`` with ``a`` ``(1, 1, H, W)``. Crops reaching past
    the image border are fine: only the part inside the image is pasted.

    ``reference``: the aligned crop of ``image`` itself ``(1, C, S, S)`` (what the enhancer was given). The
    crop's low frequencies (Gaussian of sigma ``lowpass``, default ``S *`` :data:`LOWPASS_FRACTION`) are then
    replaced by the reference's wherever ``a < 1``, returning to the crop's own over :func:`inner_mask`, so
    the fade band blends detail only and the face shows no colour step at the mask's edge.
    """
    size = crop.shape[-1]
    if reference is not None:
        if reference.shape != crop.shape:
            raise ValueError(f"reference {tuple(reference.shape)} must have the crop's shape {tuple(crop.shape)}")
        keep = inner_mask(size, erode, feather).to(device=crop.device, dtype=crop.dtype)
        sigma = size * LOWPASS_FRACTION if lowpass is None else lowpass
        crop = match_low_frequencies(crop, reference.to(crop), keep, sigma).clamp(0.0, 1.0)
    out = image.clone()
    alpha = torch.zeros(1, 1, *image.shape[-2:], dtype=image.dtype, device=image.device)
    window = crop_footprint(matrix, size, tuple(image.shape[-2:]))
    if window is None:
        return out, alpha
    x0, y0, x1, y1 = window
    mask = feather_mask(size, erode, feather).to(device=image.device, dtype=image.dtype)
    a = unwarp(mask, matrix, window).clamp_(0.0, 1.0)
    face = unwarp(crop.to(device=image.device, dtype=image.dtype), matrix, window)
    region = image[..., y0:y1, x0:x1]
    out[..., y0:y1, x0:x1] = torch.where(a > 0, a * face + (1.0 - a) * region, region)
    alpha[..., y0:y1, x0:x1] = a
    return out, alpha
