"""Pixel fidelity: PSNR, SSIM (Wang et al. 2004) and MS-SSIM (Wang et al. 2003).

``channels="rgb"`` (default) scores the three RGB channels; ``channels="y"`` scores the ITU-R BT.601 YCbCr
luma that super-resolution papers report as "Y PSNR / Y SSIM":

    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255        (R, G, B in [0, 1]; Y in [16/255, 235/255])

(the same Y as MATLAB's ``rgb2ycbcr`` and scikit-image's ``rgb2ycbcr``, divided by 255), scored with the
same ``data_range`` (1.0 by default, i.e. a peak of 255 on the 8-bit scale). Everything is computed in
float64.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from .base import METRICS, PerImageMetric

CHANNELS = ("rgb", "y")
# ITU-R BT.601 YCbCr (studio swing) luma row for [0, 1] input, scaled to [0, 1] output
_YCBCR_Y = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_YCBCR_Y_OFFSET = 16.0 / 255.0

# MS-SSIM scale weights, Wang, Simoncelli & Bovik 2003, Table/eq. (7)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def rgb_to_ycbcr_y(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] -> ``(N, 1, H, W)`` BT.601 YCbCr Y in [16/255, 235/255] (see module doc)."""
    w = torch.tensor(_YCBCR_Y, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True) + _YCBCR_Y_OFFSET


def _channels(x: torch.Tensor, channels: str) -> torch.Tensor:
    x = x.to(torch.float64)
    return rgb_to_ycbcr_y(x) if channels == "y" else x


def _check_channels(channels: str) -> str:
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")
    return channels


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, channels: str = "rgb") -> torch.Tensor:
    """Peak signal-to-noise ratio per image, ``10 log10(data_range^2 / MSE)`` with the MSE over C, H, W.

    ``(N, 3, H, W)`` pairs -> ``(N,)`` float64 in dB; ``+inf`` where the images are identical.
    """
    _check_channels(channels)
    p, t = _channels(pred, channels), _channels(target, channels)
    mse = (p - t).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 -> +inf, as it should be


def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """1-D Gaussian of ``size`` taps centred on the middle one, ``exp(-k^2 / (2 sigma^2))``, summing to 1."""
    k = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(k**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 2-D filtering of every channel with ``window``, valid region only (no padding).

    Written as in-place weighted sums of shifted views: in float64 this is several times faster on CPU
    than a depthwise ``conv2d`` (which has no fast float64 path).
    """
    taps = [float(t) for t in window]
    k = len(taps)

    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        n = t.shape[dim] - k + 1
        acc = t.narrow(dim, 0, n) * taps[0]
        for i in range(1, k):
            acc.add_(t.narrow(dim, i, n), alpha=taps[i])
        return acc

    return along(along(x, -1), -2)


def ssim_maps(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, size: int = 11, sigma: float = 1.5,
              k1: float = 0.01, k2: float = 0.03) -> tuple[torch.Tensor, torch.Tensor]:
    """Local SSIM and contrast-structure maps over the valid region, per channel (Wang et al. 2004):

        l  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
        cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2),          SSIM = l * cs,
        C1 = (K1 L)^2, C2 = (K2 L)^2, L = data_range,

    with Gaussian-weighted local means and (population) variances/covariance. ``(N, C, H, W)`` ->
    two ``(N, C, H - size + 1, W - size + 1)`` maps.
    """
    if min(x.shape[-2:]) < size:
        raise ValueError(f"images of {tuple(x.shape[-2:])} are smaller than the {size}x{size} SSIM window")
    x, y = x.to(torch.float64), y.to(torch.float64)
    c = x.shape[1]
    w = gaussian_window(size, sigma, x.dtype, x.device)
    # one depthwise pass for the five local moments
    m = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), w)
    mx, my, mxx, myy, mxy = m.split(c, dim=1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cs = (2.0 * cxy + c2) / (vx + vy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return lum * cs, cs


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, channels: str = "rgb",
         size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM per image: the SSIM map averaged over the valid region, then over channels. ``-> (N,)``.

    Equals scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1.0, channel_axis=...)``.
    """
    _check_channels(channels)
    s, _ = ssim_maps(_channels(pred, channels), _channels(target, channels), data_range, size, sigma, k1, k2)
    return s.mean(dim=(2, 3)).mean(dim=1)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling; an odd side is first extended by replicating its first row/column (ceil)."""
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (pad_w, 0, pad_h, 0), mode="replicate")
    return F.avg_pool2d(x, kernel_size=2)


def ms_ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, channels: str = "rgb",
            size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS) -> torch.Tensor:
    """Multi-scale SSIM per image (Wang, Simoncelli & Bovik 2003), per channel then averaged over channels:

        MS-SSIM = prod_{j=1}^{M-1} max(cs_j, 0)^{w_j} * max(ssim_M, 0)^{w_M}

    where ``cs_j`` is the mean contrast-structure term at scale j (scale j+1 is 2x2 average pooled) and
    ``ssim_M`` the mean SSIM at the coarsest scale. Negative terms are clipped at 0 (as piq does) so the
    fractional powers are defined. Equals ``piq.multi_scale_ssim`` whenever both sides have the same parity
    at every scale (piq pads both sides when only one is odd; we pad only the odd one). Needs ``min(H, W) >= (size - 1) * 2^(M-1) + 1`` (161 px by default).
    """
    _check_channels(channels)
    levels = len(weights)
    need = (size - 1) * 2 ** (levels - 1) + 1
    if min(pred.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with {levels} scales and an {size}-tap window needs images of at least "
                         f"{need}x{need}, got {tuple(pred.shape[-2:])}")
    x, y = _channels(pred, channels), _channels(target, channels)
    terms = []
    for j in range(levels):
        if j:
            x, y = _halve(x), _halve(y)
        s, cs = ssim_maps(x, y, data_range, size, sigma, k1, k2)
        terms.append((s if j == levels - 1 else cs).mean(dim=(2, 3)))  # (N, C)
    t = torch.stack(terms).clamp_min(0.0)  # (levels, N, C)
    w = torch.tensor(weights, dtype=t.dtype, device=t.device).view(-1, 1, 1)
    return t.pow(w).prod(dim=0).mean(dim=1)


@METRICS.register()
class PSNR(PerImageMetric):
    name: ClassVar[str] = "psnr"
    higher_is_better: ClassVar[bool] = True
    notes: ClassVar[str] = ("Peak signal-to-noise ratio in dB. An exact restoration gives +inf: summaries average "
                            "the finite values and report how many were infinite.")

    def __init__(self, channels: str = "rgb", data_range: float = 1.0):
        self.settings = {"channels": _check_channels(channels), "data_range": float(data_range),
                         "mse": "mean over channels and pixels, per image",
                         "y": "ITU-R BT.601 YCbCr Y = (16 + 65.481R + 128.553G + 24.966B)/255"
                         if channels == "y" else None}

    def _compute(self, pred, target):
        return psnr(pred, target, self.settings["data_range"], self.settings["channels"])


@METRICS.register()
class SSIM(PerImageMetric):
    name: ClassVar[str] = "ssim"
    higher_is_better: ClassVar[bool] = True
    notes: ClassVar[str] = ("SSIM of Wang et al. 2004 with an 11-tap Gaussian window (sigma 1.5) over the valid region, "
                            "per channel then averaged; no automatic downsampling. Matches scikit-image.")

    def __init__(self, channels: str = "rgb", data_range: float = 1.0, size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03):
        self.settings = {"channels": _check_channels(channels), "data_range": float(data_range),
                         "window": "gaussian", "size": int(size), "sigma": float(sigma), "K1": float(k1),
                         "K2": float(k2), "covariance": "population (1/N weights)", "border": "valid (no padding)"}

    def _compute(self, pred, target):
        s = self.settings
        return ssim(pred, target, s["data_range"], s["channels"], s["size"], s["sigma"], s["K1"], s["K2"])


@METRICS.register()
class MSSSIM(PerImageMetric):
    name: ClassVar[str] = "ms_ssim"
    higher_is_better: ClassVar[bool] = True
    notes: ClassVar[str] = ("Multi-scale SSIM (Wang et al. 2003), 5 scales with weights 0.0448, 0.2856, 0.3001, 0.2363, "
                            "0.1333; images must be at least 161 px on each side.")

    def __init__(self, channels: str = "rgb", data_range: float = 1.0, size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, weights: tuple[float, ...] | list[float] = MS_SSIM_WEIGHTS):
        self.settings = {"channels": _check_channels(channels), "data_range": float(data_range),
                         "window": "gaussian", "size": int(size), "sigma": float(sigma), "K1": float(k1),
                         "K2": float(k2), "scale_weights": [float(w) for w in weights],
                         "downsampling": "2x2 average pooling (odd side: replicate first row/column)",
                         "negative_terms": "clipped at 0"}

    def _compute(self, pred, target):
        s = self.settings
        return ms_ssim(pred, target, s["data_range"], s["channels"], s["size"], s["sigma"], s["K1"], s["K2"],
                       tuple(s["scale_weights"]))
