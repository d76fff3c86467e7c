"""No-reference scores for real old photos (no clean reference exists), all weight-free.

These are indicators, not quality judgements: a restoration that removes grain lowers total variation and
may raise blur; read them next to the image grids.

    blur_effect     Crété-Roffet et al. 2007 blur metric, scikit-image ``measure.blur_effect``;
                    0 sharp .. 1 blurred                                               lower is better
    tv              mean absolute difference between neighbouring pixels (anisotropic total variation,
                    piq ``total_variation(norm_type="l1")`` divided by the number of pixel values);
                    lower = smoother (less noise and scratches, but also less texture)
    sharpness       mean Sobel gradient magnitude of the BT.601 luma, 1/8-normalised kernels so that a
                    ramp of slope s per pixel scores s: sqrt(g_x^2 + g_y^2), g = (Sobel / 8) * Y;
                    compare a restoration with its own input (ratio): below 1 = blurrier   higher = sharper
    edge contrast   (a ratio, against the restoration's own input) the same gradient after a Gaussian of
                    sigma 1 px, averaged over the input's strongest 5% of edges (optionally outside a
                    damage mask): below 1 = those edges got softer; unlike the all-pixel sharpness,
                    removing grain barely moves it
    colourfulness   Hasler & Süsstrunk 2003, on the 0..255 scale:
                    rg = R - G, yb = (R + G) / 2 - B,
                    M = sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2)              higher is better

Not included: BRISQUE. piq's ``brisque`` downloads its SVM parameters from GitHub when called, which
would touch the network at scoring time and is not in our verified weights catalogue. NIQE/MUSIQ/NIMA
have no weight-free maintained implementation among our dependencies.
"""

from __future__ import annotations

import math
from importlib import metadata
from typing import ClassVar

import numpy as np
import torch

from ..imageio import rgb_to_luma
from .base import METRICS, PerImageMetric
from .fidelity import gaussian_window


def colourfulness(x: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (2003) colourfulness per image; ``(N, 3, H, W)`` in [0, 1] -> ``(N,)`` float64."""
    x = x.to(torch.float64) * 255.0
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return std + 0.3 * mean


def gradient_sharpness(x: torch.Tensor) -> torch.Tensor:
    """Mean Sobel gradient magnitude of the luma; ``(N, 3|1, H, W)`` in [0, 1] -> ``(N,)`` float64.

    ``Y = 0.299 R + 0.587 G + 0.114 B``; ``g_x = Y * [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8`` (``g_y`` its
    transpose), on the valid interior (no padding: borders add no false edges); score ``mean sqrt(g_x^2 +
    g_y^2)``. A linear ramp of slope ``s`` per pixel scores exactly ``s``; a blur lowers the score.
    """
    x = x.to(torch.float64)
    return _sobel_magnitude(rgb_to_luma(x) if x.shape[1] == 3 else x).flatten(1).mean(1)


def _gaussian_blur(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian (taps to 3 sigma, reflect padding) of ``(N, 1, H, W)`` float64."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    k = gaussian_window(2 * r + 1, sigma, torch.float64, y.device)
    mode = "reflect" if min(y.shape[-2:]) > r else "replicate"
    y = torch.nn.functional.conv2d(torch.nn.functional.pad(y, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    return torch.nn.functional.conv2d(torch.nn.functional.pad(y, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))


def _sobel_magnitude(y: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` -> ``(N, H - 2, W - 2)``: ``sqrt(g_x^2 + g_y^2)`` with the Sobel / 8 kernels (valid)."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64) / 8.0
    return torch.nn.functional.conv2d(y, torch.stack([k, k.T])[:, None].to(y.device)).pow(2).sum(1).sqrt()


def edge_contrast_ratio(restored: torch.Tensor, reference: torch.Tensor, sigma: float = 1.0,
                        top: float = 0.05, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """How much of the reference's strongest edges a restoration keeps; ``(N, 3|1, H, W)`` pairs -> ``(N,)``.

    ``G(x) = |Sobel / 8 (g_sigma * Y(x))|`` (BT.601 luma, Gaussian of ``sigma`` px, valid interior),
    ``E`` = the pixels where ``G(reference)`` is in its top ``top`` share, score
    ``mean_E G(restored) / mean_E G(reference)``. 1: the edges are as steep as the reference's; an affine
    change of contrast ``k x + c`` scores ``k``; a blur lowers it. The small Gaussian averages grain and noise
    out before the gradient, and ``E`` holds edges rather than grain, so a restoration that removes grain
    but keeps its input's edges stays near 1 (the all-pixel :func:`gradient_sharpness` ratio falls). Edges the
    restoration removed on purpose (a white scratch) count as lost unless ``exclude`` ``(N, 1, H, W)`` (> 0.5:
    e.g. the damage mask, grown) leaves those pixels out of ``E`` and of its quantile.
    """
    if restored.shape != reference.shape:
        raise ValueError(f"restored and reference must have one shape, got {tuple(restored.shape)} and "
                         f"{tuple(reference.shape)}")
    if not sigma > 0 or not 0 < top <= 1:
        raise ValueError(f"sigma must be > 0 and top in (0, 1], got {sigma} and {top}")
    if exclude is not None and tuple(exclude.shape) != (restored.shape[0], 1, *restored.shape[-2:]):
        raise ValueError(f"exclude must be (N, 1, H, W) = {(restored.shape[0], 1, *restored.shape[-2:])}, got "
                         f"{tuple(exclude.shape)}")
    if min(restored.shape[-2:]) < 3:
        raise ValueError(f"images must be at least 3 x 3 pixels, got {tuple(restored.shape[-2:])}")
    grads = []
    for x in (restored, reference):
        x = x.to(torch.float64)
        grads.append(_sobel_magnitude(_gaussian_blur(rgb_to_luma(x) if x.shape[1] == 3 else x, sigma)).flatten(1))
    g_out, g_ref = grads
    keep = torch.ones_like(g_ref, dtype=torch.bool)
    if exclude is not None:
        keep = (exclude[:, 0, 1:-1, 1:-1] <= 0.5).flatten(1).to(g_ref.device)
        if not bool(keep.any(dim=1).all()):
            raise ValueError("exclude leaves no pixel of some image")
    # numpy's quantile: torch.quantile refuses more than 2^24 values (a 17-megapixel scan)
    ref = np.where(keep.cpu().numpy(), g_ref.cpu().numpy(), np.nan)
    cut = torch.from_numpy(np.nanquantile(ref, 1.0 - top, axis=1, keepdims=True)).to(g_ref)
    edges = ((g_ref >= cut) & keep).to(torch.float64)
    return (g_out * edges).sum(1) / (g_ref * edges).sum(1).clamp_min(1e-12)


@METRICS.register()
class GradientSharpness(PerImageMetric):
    name: ClassVar[str] = "sharpness"
    higher_is_better: ClassVar[bool] = True
    reference: ClassVar[str] = "none"
    notes: ClassVar[str] = ("Mean Sobel gradient magnitude of the luma (per pixel, [0, 1] scale). Removing grain "
                            "and scratches lowers it too: compare with the input and read it next to the images.")

    def __init__(self):
        self.settings = {"formula": "mean sqrt(gx^2 + gy^2), Sobel / 8 on BT.601 luma", "padding": "none (valid)"}

    def _compute(self, pred, target):
        return gradient_sharpness(pred)


@METRICS.register()
class Colourfulness(PerImageMetric):
    name: ClassVar[str] = "colourfulness"
    higher_is_better: ClassVar[bool] = True
    reference: ClassVar[str] = "none"
    notes: ClassVar[str] = ("Hasler & Süsstrunk 2003 colourfulness on the 0..255 scale (0 for gray images). Faded "
                            "photos score low; higher is not always better (over-saturation also scores high).")

    def __init__(self):
        self.settings = {"formula": "sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2), rg = R - G, "
                                    "yb = (R + G)/2 - B", "scale": "0..255", "std": "population"}

    def _compute(self, pred, target):
        return colourfulness(pred)


@METRICS.register()
class BlurEffect(PerImageMetric):
    name: ClassVar[str] = "blur_effect"
    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = "none"
    notes: ClassVar[str] = ("Crété-Roffet et al. 2007 no-reference blur estimate (scikit-image), 0 sharp to 1 "
                            "blurred, on the luminance; maximum over the two axes.")

    def __init__(self, h_size: int = 11):
        self.settings = {"implementation": f"scikit-image {metadata.version('scikit-image')} "
                                           "skimage.measure.blur_effect", "h_size": int(h_size),
                         "reduce": "max over axes", "gray": "skimage rgb2gray (ITU-R BT.709 luma)"}

    def _compute(self, pred, target):
        from skimage.measure import blur_effect

        imgs = pred.detach().to("cpu", torch.float64).clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy()
        vals = [blur_effect(np.ascontiguousarray(a), h_size=self.settings["h_size"], channel_axis=-1)
                for a in imgs]
        return torch.tensor(vals, dtype=torch.float64)


@METRICS.register()
class TotalVariation(PerImageMetric):
    name: ClassVar[str] = "tv"
    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = "none"
    notes: ClassVar[str] = ("Anisotropic total variation per pixel value (piq): mean |difference| between "
                            "horizontal and vertical neighbours. Lower is smoother: less noise, but also less texture.")

    def __init__(self):
        self.settings = {"implementation": f"piq {metadata.version('piq')} total_variation(norm_type='l1')",
                         "normalisation": "divided by C*H*W", "input": "clamped to [0, 1]"}

    def _compute(self, pred, target):
        import piq

        x = pred.float().clamp(0.0, 1.0)
        return piq.total_variation(x, reduction="none", norm_type="l1") / float(x[0].numel())
