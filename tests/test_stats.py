"""Fréchet distance and MMD against closed forms."""

import numpy as np
import pytest
from scipy import linalg

from oldphoto_bench.stats import frechet_distance, frechet_distance_sets, mmd2_unbiased, polynomial_kernel


def test_frechet_equal_covariance_is_squared_mean_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(mu1, cov, mu2, cov) == pytest.approx(float(((mu1 - mu2) ** 2).sum()), rel=1e-6)


def test_frechet_of_diagonal_gaussians_closed_form():
    # commuting covariances: Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (s1 - s2)^2 for standard deviations s
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, 3.0])
    d = frechet_distance(np.zeros(3), np.diag(s1**2), np.ones(3), np.diag(s2**2))
    assert d == pytest.approx(3.0 + float(((s1 - s2) ** 2).sum()), rel=1e-9)


def test_frechet_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(200, 8))
    assert frechet_distance_sets(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_general_matches_scipy_formula():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    # independent form: Tr(sqrt(sqrt(C1) C2 sqrt(C1))) equals Tr(sqrt(C1 C2))
    r = linalg.sqrtm(c1).real
    expect = np.trace(c1) + np.trace(c2) - 2 * np.trace(linalg.sqrtm(r @ c2 @ r).real)
    assert frechet_distance(np.zeros(4), c1, np.zeros(4), c2) == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_mmd_same_distribution_near_zero_and_shift_positive(kernel):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    z = rng.normal(size=(300, 4)) + 1.0
    same, diff = mmd2_unbiased(x, y, kernel), mmd2_unbiased(x, z, kernel)
    assert abs(same) < 0.1 * diff and diff > 0


def test_mmd_poly_matches_explicit_double_sum():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    sxx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    syy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    sxy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert mmd2_unbiased(x, y, "poly") == pytest.approx(sxx + syy - 2 * sxy, rel=1e-10)
    assert polynomial_kernel(x, y).shape == (7, 5)


def test_bad_inputs():
    with pytest.raises(ValueError):
        mmd2_unbiased(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="valid: rbf, poly"):
        mmd2_unbiased(np.zeros((3, 3)), np.zeros((4, 3)), kernel="cosine")
