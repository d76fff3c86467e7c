"""benchmarks/colour_oracle.py and benchmarks/eval_colour_stage.py: the least-squares colour match recovers an
affine colour change exactly (closed form) and never does worse than leaving the photo alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from colour_oracle import oracle_colour  # noqa: E402
from eval_colour_stage import oracle_affine  # noqa: E402

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
