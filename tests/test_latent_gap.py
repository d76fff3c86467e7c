"""Latent domain-gap tools on injected encoders (no training needed)."""

import numpy as np
import pytest
import torch

from oldphoto_bench.latent_gap import (
    format_table,
    gap_between,
    latent_cells,
    latent_gap,
    plot_embedding,
    prepare,
)
from oldphoto_bench.stats import frechet_distance_sets


def test_prepare_crops_to_square_multiple():
    x = torch.rand(1, 3, 50, 81)
    y = prepare(x, 30)
    assert y.shape == (1, 3, 28, 28)


def test_latent_cells_are_seeded_and_sized():
    enc = lambda x: x[:, :, ::4, ::4]  # noqa: E731  (a stand-in "encoder": 3 channels at H/4)
    imgs = [torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    a = latent_cells(enc, imgs, 10, seed=1)
    assert a.shape == (30, 3)
    assert np.array_equal(a, latent_cells(enc, imgs, 10, seed=1))
    assert not np.array_equal(a, latent_cells(enc, imgs, 10, seed=2))
    # every drawn cell is a real cell of the first image's latent grid
    grid = enc(imgs[0])[0].flatten(1).T.numpy()
    assert all((np.abs(grid - c).sum(1) < 1e-6).any() for c in a[:10])


def test_gap_orders_domains_by_shift():
    rng = np.random.default_rng(0)
    r, x = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    y = rng.normal(size=(400, 8)) + 2.0
    res = latent_gap({"R": r, "X": x, "Y": y})
    assert set(res["pairs"]) == {"R-X", "X-Y", "R-Y"}
    assert res["pairs"]["R-X"]["frechet"] < 0.2 * res["pairs"]["X-Y"]["frechet"]
    assert res["pairs"]["R-X"]["mmd"] < 0.2 * res["pairs"]["R-Y"]["mmd"]
    assert res["pairs"]["X-Y"]["frechet"] == pytest.approx(frechet_distance_sets(x, y))
    assert "R-X" in format_table(res)
    # the relative distance does not change when every latent is scaled
    scaled = latent_gap({"R": 3 * r, "X": 3 * x, "Y": 3 * y})
    assert scaled["pairs"]["X-Y"]["frechet"] == pytest.approx(9 * res["pairs"]["X-Y"]["frechet"])
    assert scaled["pairs"]["X-Y"]["frechet_relative"] == pytest.approx(res["pairs"]["X-Y"]["frechet_relative"])


def test_missing_domain_leaves_pairs_out():
    rng = np.random.default_rng(1)
    res = latent_gap({"X": rng.normal(size=(50, 4)), "Y": rng.normal(size=(50, 4))})
    assert list(res["pairs"]) == ["X-Y"]


def test_gap_between_subsamples_mmd():
    rng = np.random.default_rng(2)
    d = gap_between(rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4)), max_mmd_points=200)
    assert abs(d["mmd"]) < 0.05 and d["frechet"] < 0.05


def test_plot_embedding_writes_png(tmp_path):
    rng = np.random.default_rng(3)
    feats = {k: rng.normal(size=(60, 5)) + i for i, k in enumerate("RXY")}
    plot_embedding(feats, tmp_path / "emb.png", max_points=40)
    assert (tmp_path / "emb.png").stat().st_size > 1000
