"""Image-quality metrics with a declared contract (see :mod:`.base`), registered in :data:`METRICS`.

Full reference, per image:  psnr, ssim, ms_ssim (:mod:`.fidelity`); haarpsi, gmsd, ms_gmsd, mdsi, vsi, fsim,
                            vif (:mod:`.perceptual`, piq, weight-free); lpips (:mod:`.lpips_metric`, weights)
Per set:                    fid, kid (:mod:`.distribution`, FID Inception weights or an injected extractor)
No reference, per image:    blur_effect, tv, sharpness, colourfulness (:mod:`.noreference`)

Weights: :mod:`.weights` (catalogue, lookup, verification, fetch). Importing this package loads no weights
and touches no network.
"""

from .aggregate import Aggregate, aggregate
from .base import (
    METRICS,
    Metric,
    MetricUnavailable,
    PerImageMetric,
    SetMetric,
    SetScore,
    build_metric,
    try_build,
)
from .distribution import FID, KID
from .fidelity import MSSSIM, PSNR, SSIM, ms_ssim, psnr, rgb_to_ycbcr_y, ssim
from .lpips_metric import LPIPS
from .noreference import (
    BlurEffect,
    Colourfulness,
    GradientSharpness,
    TotalVariation,
    colourfulness,
    edge_contrast_ratio,
    gradient_sharpness,
)
from .perceptual import FSIM, GMSD, HAARPSI, MDSI, MS_GMSD, VIF, VSI, PiqMetric

__all__ = [
    "METRICS", "Metric", "MetricUnavailable", "PerImageMetric", "SetMetric", "SetScore", "build_metric",
    "try_build", "Aggregate", "aggregate", "PSNR", "SSIM", "MSSSIM", "psnr", "ssim", "ms_ssim", "rgb_to_ycbcr_y",
    "LPIPS", "FID", "KID", "PiqMetric", "HAARPSI", "GMSD", "MS_GMSD", "MDSI", "VSI", "FSIM", "VIF",
    "BlurEffect", "Colourfulness", "GradientSharpness", "TotalVariation", "colourfulness",
    "edge_contrast_ratio", "gradient_sharpness",
]
