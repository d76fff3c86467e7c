"""The guided filter that ends the global stage (oldphoto_bench.restore.guided) against a dense per-pixel
reference of He et al.'s equations, its closed-form limits, and its place in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oldphoto_bench.restore.guided import GUIDE_RADIUS, box_mean, guided_filter
from oldphoto_bench.seeding import torch_generator


def reflect(i: int, n: int) -> int:
    """Index ``i`` reflected into ``[0, n)`` without repeating the edge (numpy/torch ``reflect``)."""
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def dense_guided(p: np.ndarray, g: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Per pixel and channel, the window sums written out (float64): the independent reference."""
    c, h, w = p.shape

    def window(y: int, x: int) -> list[tuple[int, int]]:
        return [(reflect(y + dy, h), reflect(x + dx, w)) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]

    a, b = np.zeros_like(p), np.zeros_like(p)
    for k in range(c):
        for y in range(h):
            for x in range(w):
                gi = np.array([g[k, i, j] for i, j in window(y, x)])
                pi = np.array([p[k, i, j] for i, j in window(y, x)])
                cov = (gi * pi).mean() - gi.mean() * pi.mean()
                var = (gi * gi).mean() - gi.mean() ** 2
                a[k, y, x] = cov / (var + eps)
                b[k, y, x] = pi.mean() - a[k, y, x] * gi.mean()
    q = np.zeros_like(p)
    for k in range(c):
        for y in range(h):
            for x in range(w):
                idx = window(y, x)
                q[k, y, x] = np.mean([a[k, i, j] for i, j in idx]) * g[k, y, x] + np.mean([b[k, i, j] for i, j in idx])
    return np.clip(q, 0.0, 1.0)


@pytest.mark.parametrize("radius,eps", [(1, 1e-3), (2, 1e-2), (3, 1e-4)])
def test_matches_the_dense_reference(radius, eps):
    gen = torch_generator(3)
    guide = torch.rand(1, 3, 9, 11, generator=gen)
    image = (0.6 * guide + 0.4 * torch.rand(1, 3, 9, 11, generator=gen)).clamp(0, 1)  # correlated, not equal
    got = guided_filter(image, guide, radius, eps)
    want = dense_guided(image[0].double().numpy(), guide[0].double().numpy(), radius, eps)
    np.testing.assert_allclose(got[0].numpy(), want, atol=2e-5)


def test_closed_form_limits():
    gen = torch_generator(4)
    guide = torch.rand(1, 3, 16, 20, generator=gen)
    image = torch.rand(1, 3, 16, 20, generator=gen)
    assert torch.equal(guided_filter(image, guide, 0, 1e-4), image)          # radius 0: off
    flat = torch.full_like(image, 0.3)
    torch.testing.assert_close(guided_filter(flat, guide, 2, 1e-4), flat)     # a = 0, b = the constant
    # eps -> inf: a -> 0, q = box(box(p)), a double box blur
    torch.testing.assert_close(guided_filter(image, guide, 2, 1e9), box_mean(box_mean(image, 2), 2), atol=1e-6,
                               rtol=0)
    # the image as its own guide with eps -> 0: a = 1, b = 0 in every window, q = p
    torch.testing.assert_close(guided_filter(image, image, 2, 1e-12), image, atol=1e-4, rtol=0)
    # an affine function of the guide is reproduced exactly (the local linear model holds everywhere)
    torch.testing.assert_close(guided_filter(0.5 * guide + 0.2, guide, 3, 1e-12), 0.5 * guide + 0.2, atol=1e-4,
                               rtol=0)


@pytest.mark.parametrize("height,band", [(70, 16), (37, 8), (41, 30)])
def test_bands_give_the_whole_image_result(height, band):
    gen = torch_generator(9)
    guide = torch.rand(1, 3, height, 23, generator=gen)
    image = (0.5 * guide + 0.5 * torch.rand(1, 3, height, 23, generator=gen)).clamp(0, 1)
    whole = guided_filter(image, guide, 3, 1e-3, band_rows=None)
    torch.testing.assert_close(guided_filter(image, guide, 3, 1e-3, band_rows=band), whole, atol=1e-6, rtol=0)


def test_small_images_and_bad_arguments():
    image = torch.rand(1, 3, 2, 3, generator=torch_generator(1))
    out = guided_filter(image, image, 4, 1e-4)  # radius above the side: edges repeated instead of reflected
    assert out.shape == image.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="same shape"):
        guided_filter(image, image[..., :2], 1, 1e-4)
    with pytest.raises(ValueError, match="radius"):
        guided_filter(image, image, -1, 1e-4)
    with pytest.raises(ValueError, match="eps"):
        guided_filter(image, image, 1, 0.0)


def test_the_global_stage_ends_with_it(smoke_runs):
    """``restore_global`` = the guided filter of the raw decoded image on the colour-corrected input; radius 0
    leaves the raw decoded image."""
    from oldphoto_bench.restore import Restorer

    image = torch.rand(1, 3, 37, 50, generator=torch_generator(6))
    raw = Restorer(smoke_runs, faces=False, guide_radius=0)
    guided = Restorer(smoke_runs, faces=False, guide_radius=2, guide_eps=1e-3)
    want = guided_filter(raw.restore_global(image), raw.correct_colour(image), 2, 1e-3)
    assert torch.equal(guided.restore_global(image), want)
    assert not torch.equal(want, raw.restore_global(image))
    with pytest.raises(ValueError, match="guide_radius"):
        Restorer(smoke_runs, faces=False, guide_radius=-1)


def test_restore_command_takes_and_records_the_filter(smoke_runs, tmp_path):
    import json

    from oldphoto_bench.cli import main
    from oldphoto_bench.imageio import save_image

    save_image(torch.rand(1, 3, 40, 48, generator=torch_generator(7)), tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "in"), "--out", str(out), "--checkpoints", str(smoke_runs),
                 "--no-faces", "--no-progress", "--guide-radius", "0", "--guide-eps", "0.01"]) == 0
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["guide_radius"] == 0 and config["guide_eps"] == 0.01


def test_detail_layer_and_the_detail_option(smoke_runs):
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.restore.guided import detail_layer

    flat = torch.full((1, 3, 20, 24), 0.4)
    assert detail_layer(flat).abs().max() < 1e-6                      # nothing to keep on a flat image
    image = torch.rand(1, 3, 37, 50, generator=torch_generator(8))
    torch.testing.assert_close(detail_layer(image), image - guided_filter(image, image, 2, 4e-3))
    plain = Restorer(smoke_runs, faces=False)
    half = Restorer(smoke_runs, faces=False, detail=0.5)
    want = (plain.restore_global(image) + 0.5 * detail_layer(plain.correct_colour(image))).clamp(0, 1)
    torch.testing.assert_close(half.restore_global(image), want)
    assert not torch.equal(want, plain.restore_global(image))
    with pytest.raises(ValueError, match="detail"):
        Restorer(smoke_runs, faces=False, detail=1.5)


def test_bench_method_options_reach_the_pipeline(smoke_runs):
    """``bench --set ours.guide_radius=0 --set ours.detail=0.5``: the options reach the Restorer and are
    recorded in the method's settings."""
    from oldphoto_bench.bench import MethodContext, build_method

    ours = build_method("ours", MethodContext(checkpoints=smoke_runs), faces=False, guide_radius=0, detail=0.5)
    assert ours.restorer.guide_radius == 0 and ours.restorer.detail == 0.5
    assert ours.settings["guide_radius"] == 0 and ours.settings["detail"] == 0.5
    default = build_method("ours", MethodContext(checkpoints=smoke_runs), faces=False)
    assert default.settings["guide_radius"] == GUIDE_RADIUS and default.settings["detail"] == 0.0
