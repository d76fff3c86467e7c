"""Set-level distances between restored photos and clean references: FID and KID on Inception features.

* **FID** (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the two feature sets,
  ``|mu_p - mu_t|^2 + Tr(S_p + S_t - 2 (S_p S_t)^{1/2})`` (as :func:`oldphoto_bench.stats.frechet_distance`,
  with the trace term from eigendecompositions: :func:`frechet_distance_psd`).
  Biased upwards on small sets, and with fewer images than feature dimensions (2048) the covariances are
  singular: compare FIDs only at equal, large n.
* **KID** (Bińkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  ``k(a, b) = (<a, b> / d + 1)^3``, averaged over ``subsets`` random subsets of ``subset_size`` (1000, or
  the smaller set size when fewer) drawn without replacement; reported as mean and standard deviation
  (population, ddof=0, as torch-fidelity). Unbiased for any n >= 2: **the one to read on small sets.**

Features come from the FID Inception-v3 (:mod:`oldphoto_bench.metrics.inception`), loaded from the weights
catalogue; or from any injected ``feature_extractor(images) -> (n, d)`` callable (tests, other features).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import linalg

from ..seeding import numpy_rng
from ..stats import mean_cov, mmd2_unbiased
from .base import METRICS, MetricUnavailable, SetMetric, SetScore
from .weights import WeightsError, WeightsFile

FeatureExtractor = Callable[[torch.Tensor], Any]
INPUT_SIZE, FEATURE_DIM = 299, 2048  # as in .inception (imported lazily: it pulls in torchvision)

_PREPROCESS_TEXT = {
    "torch-fidelity": "quantise round(255x); TF1 resize_bilinear (align_corners=False, no half-pixel centres) to "
                      f"{INPUT_SIZE}x{INPUT_SIZE}, as torch-fidelity and torchmetrics; (x - 128) / 128",
    "pytorch-fid": f"torch bilinear (align_corners=False, no antialias) to {INPUT_SIZE}x{INPUT_SIZE}, as "
                   "pytorch-fid; 2x - 1",
}


class InceptionSetMetric(SetMetric):
    """Shared plumbing: the feature extractor, batching, and the settings that describe the features."""

    requires_weights: ClassVar[tuple[str, ...]] = ("inception-fid",)

    def __init__(self, feature_extractor: FeatureExtractor | None = None, *, device: str | torch.device = "cpu",
                 weights_dir: str | os.PathLike | None = None, preprocess: str = "torch-fidelity",
                 batch_size: int = 32, feature_name: str | None = None,
                 catalogue: Mapping[str, WeightsFile] | None = None):
        super().__init__()
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        if feature_extractor is None:
            from .inception import load_fid_inception

            try:
                model, path = load_fid_inception(weights_dir, preprocess, catalogue)
            except WeightsError as e:
                raise MetricUnavailable(self.name, str(e)) from None
            self.extractor: FeatureExtractor = model.to(self.device)
            features = {"features": f"Inception-v3 pool3, {FEATURE_DIM}-d (FID Inception, 2015-12-05 TF graph)",
                        "weights": path, "preprocess": preprocess, "resize": _PREPROCESS_TEXT.get(preprocess)}
        else:
            self.extractor = feature_extractor
            label = feature_name or getattr(feature_extractor, "__name__", type(feature_extractor).__name__)
            features = {"features": f"injected extractor: {label}", "weights": None, "preprocess": None,
                        "resize": None}
        self.settings = {**features, "input": "(N, 3, H, W) RGB in [0, 1]"}

    def features(self, images: torch.Tensor) -> np.ndarray:
        """``(N, 3, H, W)`` -> ``(N, d)`` float64 features, computed in batches of ``batch_size``."""
        out = []
        with torch.no_grad():
            for chunk in images.split(self.batch_size):
                f = self.extractor(chunk.to(self.device))
                f = f.detach().to("cpu", torch.float64).numpy() if isinstance(f, torch.Tensor) else f
                out.append(np.asarray(f, dtype=np.float64).reshape(len(chunk), -1))
        return np.concatenate(out)


def frechet_distance_psd(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """The Fréchet distance of :func:`oldphoto_bench.stats.frechet_distance`, with the trace term computed
    from symmetric eigendecompositions (about 5x faster than ``scipy.linalg.sqrtm`` at d = 2048, and exact
    for singular covariances):

        Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2} = sum_i sqrt(lambda_i(S1^{1/2} S2 S1^{1/2}))

    (S1 S2 is similar to the symmetric PSD matrix S1^{1/2} S2 S1^{1/2}). Eigenvalues below 0 from round-off
    are clipped to 0; the result is clipped at 0.
    """
    lam, vec = linalg.eigh(cov1)
    root1 = (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T
    m = root1 @ cov2 @ root1
    ev = linalg.eigvalsh((m + m.T) / 2.0)
    tr_sqrt = float(np.sqrt(np.clip(ev, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt, 0.0))


def _check_sets(name: str, p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if p.ndim != 2 or t.ndim != 2 or p.shape[1] != t.shape[1]:
        raise ValueError(f"{name}: need (n, d) and (m, d) feature arrays, got {p.shape} and {t.shape}")
    if len(p) < 2 or len(t) < 2:
        raise ValueError(f"{name}: needs at least 2 images per set, got {len(p)} and {len(t)}")
    return p, t


@METRICS.register()
class FID(InceptionSetMetric):
    name: ClassVar[str] = "fid"
    higher_is_better: ClassVar[bool] = False
    notes: ClassVar[str] = ("Fréchet Inception distance (Heusel et al. 2017). Biased upwards on small sets and "
                            "unreliable below ~2048 images (singular covariances): compare only at equal n, and "
                            "read KID on small sets.")

    def __init__(self, feature_extractor: FeatureExtractor | None = None, **kwargs: Any):
        super().__init__(feature_extractor, **kwargs)
        self.settings.update({"covariance": "unbiased (n - 1)",
                              "trace_sqrt": "Tr sqrt(S_p S_t) = sum sqrt(eig(S_p^1/2 S_t S_p^1/2)), "
                                            "symmetric eigendecompositions in float64"})

    def score_features(self, pred_feats: np.ndarray, target_feats: np.ndarray) -> SetScore:
        p, t = _check_sets(self.name, pred_feats, target_feats)
        return SetScore(frechet_distance_psd(*mean_cov(p), *mean_cov(t)), None, len(p), len(t))


@METRICS.register()
class KID(InceptionSetMetric):
    name: ClassVar[str] = "kid"
    higher_is_better: ClassVar[bool] = False
    notes: ClassVar[str] = ("Kernel Inception distance (Bińkowski et al. 2018): unbiased MMD^2, cubic polynomial "
                            "kernel, mean ± std over random subsets. Unbiased at any n, so it is the set metric to "
                            "read on small test sets (can be slightly negative when the sets match).")

    def __init__(self, feature_extractor: FeatureExtractor | None = None, *, subsets: int = 100,
                 subset_size: int = 1000, seed: int = 0, **kwargs: Any):
        super().__init__(feature_extractor, **kwargs)
        if subsets < 1 or subset_size < 2:
            raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.settings.update({"kernel": "(<a, b> / d + 1)^3", "estimator": "unbiased MMD^2",
                              "subsets": int(subsets), "subset_size": int(subset_size),
                              "subset_size_rule": "min(subset_size, n_pred, n_target), without replacement",
                              "std": "population (ddof=0) over subsets", "seed": int(seed), "scale": "x1"})

    def score_features(self, pred_feats: np.ndarray, target_feats: np.ndarray) -> SetScore:
        p, t = _check_sets(self.name, pred_feats, target_feats)
        s = self.settings
        m = min(s["subset_size"], len(p), len(t))
        rng = numpy_rng(s["seed"])
        vals = np.array([mmd2_unbiased(p[rng.choice(len(p), m, replace=False)],
                                       t[rng.choice(len(t), m, replace=False)], kernel="poly")
                         for _ in range(s["subsets"])])
        return SetScore(float(vals.mean()), float(vals.std()), len(p), len(t))
