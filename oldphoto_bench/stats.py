"""Distances between sets of feature vectors: Fréchet distance and MMD.

Used for the latent domain gap (R-X, X-Y, R-Y) and, with Inception features, for FID and KID.
Inputs are (n, d) float arrays; computation is in float64 with numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (d,) and unbiased covariance (d, d) of (n, d) features (n >= 2)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need an (n, d) array with n >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2):

        d^2 = |mu1 - mu2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2})

    (Dowson & Landau 1982; the FID of Heusel et al. 2017). When the product is near singular, ``eps`` is added
    to both diagonals, as pytorch-fid does. Returned value is clipped at 0.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape:
        raise ValueError("the two distributions must have the same dimension")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():
        offset = np.eye(cov1.shape[0]) * eps
        covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean), 0.0))


def frechet_distance_sets(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) feature sets."""
    return frechet_distance(*mean_cov(x), *mean_cov(y))


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """k(a, b) = (gamma <a, b> + coef0)^degree, gamma = 1/d by default (the KID kernel, Bińkowski et al. 2018)."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * x @ y.T + coef0) ** degree


def rbf_kernel(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2))."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.exp(-np.maximum(d2, 0.0) / (2.0 * bandwidth**2))


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """The median heuristic: median pairwise distance over the pooled sample."""
    z = np.concatenate([x, y])
    d2 = (z * z).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * z @ z.T
    d = np.sqrt(np.maximum(d2[np.triu_indices(len(z), k=1)], 0.0))
    med = float(np.median(d)) if d.size else 1.0
    return med if med > 0 else 1.0


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, kernel: str = "rbf", bandwidth: float | None = None) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012):

        MMD^2 = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)

    ``kernel``: ``"rbf"`` (bandwidth by the median heuristic unless given) or ``"poly"`` (cubic, as KID).
    Can be slightly negative for equal distributions (it is unbiased).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"need (n, d) and (m, d) arrays with n, m >= 2; got {x.shape} and {y.shape}")
    if kernel == "rbf":
        bw = median_bandwidth(x, y) if bandwidth is None else bandwidth
        kxx, kyy, kxy = rbf_kernel(x, x, bw), rbf_kernel(y, y, bw), rbf_kernel(x, y, bw)
    elif kernel == "poly":
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; valid: rbf, poly")
    n, m = len(x), len(y)
    sxx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.mean())
