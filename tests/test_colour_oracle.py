"""benchmarks/colour_oracle.py and benchmarks/eval_colour_stage.py: the least-squares colour match recovers an
affine colour change exactly (closed form) and never does worse than leaving the photo alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from colour_oracle import oracle_colour  # noqa: E402
from eval_colour_stage import oracle_affine, scaled_affine  # noqa: E402

from oldphoto_bench.models.colour import apply_colour  # noqa: E402


def test_oracle_recovers_an_affine_colour_change_exactly():
    rng = np.random.default_rng(0)
    y = rng.uniform(0.2, 0.8, size=(20, 30, 3))
    a = np.array([[0.6, 0.1, 0.0], [0.05, 0.5, 0.1], [0.0, 0.2, 0.4]])
    b = np.array([0.1, 0.15, 0.2])
    x = y @ a.T + b                                  # an invertible tint inside [0, 1]
    assert np.all((x > 0) & (x < 1))
    np.testing.assert_allclose(oracle_colour(x, y), y, atol=1e-9)
    xt = torch.from_numpy(x).float().permute(2, 0, 1)[None]
    yt = torch.from_numpy(y).float().permute(2, 0, 1)[None]
    torch.testing.assert_close(apply_colour(xt, oracle_affine(xt, yt)), yt, atol=1e-4, rtol=0)


def test_oracle_is_never_worse_than_the_identity():
    rng = np.random.default_rng(1)
    y = rng.uniform(0, 1, size=(16, 16, 3))
    x = np.clip(y + rng.normal(0, 0.1, size=y.shape), 0, 1)   # noise: no affine map undoes it
    assert np.mean((oracle_colour(x, y) - y) ** 2) <= np.mean((x - y) ** 2) + 1e-12


def test_scaled_affine_interpolates_between_the_identity_and_the_map():
    g = torch.Generator().manual_seed(0)
    affine = torch.eye(3, 4)[None] + 0.2 * torch.randn(2, 3, 4, generator=g)
    x = torch.rand(2, 3, 5, 7, generator=g) * 0.5 + 0.25
    assert torch.equal(scaled_affine(affine, 0.0), torch.eye(3, 4).expand(2, 3, 4))  # strength 0: the identity
    assert torch.allclose(scaled_affine(affine, 1.0), affine)
    # before clamping the corrected colour moves linearly: x + s (A x + b - x)
    lin = torch.einsum("nij,njhw->nihw", affine[:, :, :3], x) + affine[:, :, 3, None, None]
    for s in (0.5, 1.25):
        a = scaled_affine(affine, s)
        got = torch.einsum("nij,njhw->nihw", a[:, :, :3], x) + a[:, :, 3, None, None]
        assert torch.allclose(got, x + s * (lin - x), atol=1e-6)
