"""The global colour correction: closed forms (identity at init, the affine map per pixel, area thumbnails that
commute with it), its training data, and the restore pipeline picking it up from a runs folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oldphoto_bench.models.colour import (
    N_EDGE_STATISTICS,
    N_STATISTICS,
    GlobalColourNet,
    apply_colour,
    colour_statistics,
    compose_affine,
    edge_statistics,
    fit_colour,
    levels_affine,
    thumbnail,
)
from oldphoto_bench.seeding import torch_generator


def test_identity_at_init_and_affine_reference():
    g = torch_generator(0)
    x = torch.rand(2, 3, 37, 50, generator=g)
    net = GlobalColourNet(size=16, base_channels=4, hidden=8, n_down=2, init_seed=1)
    assert torch.equal(net.correct(x), x)
    affine = torch.randn(2, 3, 4, generator=g) * 0.5
    out = apply_colour(x, affine).numpy()
    xa, aa = x.numpy().astype(np.float64), affine.numpy().astype(np.float64)
    ref = np.clip(np.einsum("nij,njhw->nihw", aa[:, :, :3], xa) + aa[:, :, 3][..., None, None], 0, 1)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_thumbnail_is_an_area_average_that_commutes_with_the_affine_map():
    g = torch_generator(2)
    x = torch.rand(1, 3, 64, 96, generator=g)
    t = thumbnail(x, 16)
    ref = x.reshape(1, 3, 16, 4, 16, 6).mean(dim=(3, 5))
    torch.testing.assert_close(t, ref)
    affine = torch.tensor([[[0.85, 0.1, 0.0, 0.02], [0.0, 0.8, 0.1, 0.05], [0.05, 0.0, 0.7, 0.1]]])
    # no clamping happens for these values: A x + b stays inside [0, 1]
    torch.testing.assert_close(thumbnail(apply_colour(x, affine), 16), apply_colour(t, affine), atol=1e-6, rtol=0)
    assert thumbnail(torch.rand(1, 3, 10, 12, generator=g), 16).shape == (1, 3, 16, 16)  # small photos upsample


def test_aged_thumbnails_are_seeded_gray_targets_and_undamaged_items():
    from oldphoto_bench.data import open_source
    from oldphoto_bench.train.colour_stage import AgedThumbnails

    src = open_source("embedded")
    gray = {"name": "g", "stages": [{"name": "colour", "groups": [
        {"name": "grayscale", "p": 1.0, "ops": [{"type": "grayscale"}]}]}]}
    a = AgedThumbnails(src, "paper", size=16, side=48, seed=3)
    b = AgedThumbnails(src, "paper", size=16, side=48, seed=3)
    assert all(torch.equal(a[i]["degraded"], b[i]["degraded"]) for i in range(3))
    a.set_epoch(1)
    assert not torch.equal(a[0]["degraded"], b[0]["degraded"])
    item = AgedThumbnails(src, gray, size=16, side=48, seed=3)[1]
    c = item["clean"]
    assert torch.equal(c[0], c[1]) and torch.equal(c[1], c[2])
    clean = AgedThumbnails(src, "paper", size=16, side=48, seed=3, clean_fraction=1.0)[2]
    assert clean["record"]["undamaged"] and torch.equal(clean["clean"], clean["degraded"])


def test_colour_stage_trains_and_restore_applies_it(tmp_path):
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.train import train_stage
    from oldphoto_bench.train.artifacts import load_colour

    for stage in ("vae-b", "vae-a", "mapping"):
        train_stage(stage, "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    image = torch.rand(1, 3, 40, 44, generator=torch_generator(4))
    before = Restorer(tmp_path, faces=False).restore_global(image)
    train_stage("colour", "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=2"])
    net = load_colour(tmp_path)
    restorer = Restorer(tmp_path, faces=False)
    assert restorer.colour is not None
    # the pipeline encodes the colour-corrected photo: equal to restoring that photo without the stage
    corrected = net.correct(image)
    assert not torch.equal(corrected, image)
    restorer.colour = None
    torch.testing.assert_close(restorer.restore_global(corrected), Restorer(tmp_path, faces=False).restore_global(image))
    assert not torch.equal(before, restorer.restore_global(corrected))


def test_colour_histograms_match_numpy():
    from oldphoto_bench.models.colour import colour_histograms

    t = torch.rand(2, 3, 17, 9, generator=torch_generator(3))
    t[0, 0, 0, 0], t[1, 2, 0, 0] = 1.0, 0.0  # both ends of the range land in the end bins
    got = colour_histograms(t, 8).view(2, 3, 8)
    for n in range(2):
        for c in range(3):
            ref, _ = np.histogram(t[n, c].numpy(), bins=8, range=(0.0, 1.0))
            assert np.allclose(got[n, c].numpy(), ref / t[n, c].numel(), atol=1e-7)
    net = GlobalColourNet(histogram_bins=8)
    assert net(t).shape == (2, 3, 4) and net.head[0].in_features == 64 + N_STATISTICS + 24


def test_statistics_only_standardised_net_starts_as_identity_and_standardises_features():
    g = torch_generator(5)
    x = torch.rand(6, 3, 30, 41, generator=g)
    net = GlobalColourNet(size=16, hidden=32, n_down=0, standardize=True, head_layers=2, init_seed=2)
    assert torch.equal(net.correct(x), x)  # zero last layer: the identity in training and eval mode
    assert [type(m).__name__ for m in net.head].count("Linear") == 3 and len(net.features) == 0
    # LeCun-normal hidden layers for unit-variance features: std close to 1 / sqrt(fan_in)
    w = net.head[2].weight.detach()
    assert abs(float(w.std()) * w.shape[1] ** 0.5 - 1.0) < 0.1
    # in training mode the features reaching the MLP have zero mean and unit variance over the batch
    seen = {}
    net.head[0].register_forward_hook(lambda m, inp, out: seen.update(f=inp[0].detach()))
    net.train()(x)
    # reference: the thumbnail's channel means and colour_statistics, standardised over the batch
    t = thumbnail(x, 16)
    raw = torch.cat([t.mean(dim=(2, 3)), colour_statistics(t)], dim=1).double()
    ref = (raw - raw.mean(0)) / (raw.var(0, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(seen["f"].double(), ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="head_layers"):
        GlobalColourNet(head_layers=0)


def test_fit_colour_matches_weighted_least_squares_and_ignores_masked_pixels():
    gen = torch_generator(11)
    x = torch.rand(2, 3, 12, 10, generator=gen)
    affine = torch.tensor([[0.7, 0.2, 0.0, 0.1], [0.0, 0.9, 0.1, -0.05], [0.1, 0.1, 0.6, 0.2]])
    y = apply_colour(x, affine.expand(2, 3, 4)) + 0.01 * torch.randn(2, 3, 12, 10, generator=gen)
    weight = (torch.rand(2, 1, 12, 10, generator=gen) > 0.3).float()
    y_bad = torch.where(weight.bool(), y, torch.ones_like(y))   # a white "scratch" where the weight is 0
    fit = fit_colour(x, y_bad, weight, ridge=0.0)
    for i in range(2):  # reference: numpy least squares on the kept pixels only
        keep = weight[i, 0].flatten().bool().numpy()
        u = np.concatenate([x[i].flatten(1).T.numpy(), np.ones((x[0, 0].numel(), 1))], 1)[keep]
        ref, *_ = np.linalg.lstsq(u.astype(np.float64), y[i].flatten(1).T.numpy()[keep].astype(np.float64), rcond=None)
        np.testing.assert_allclose(fit[i].numpy(), ref.T, atol=1e-4)
    # a grayscale source makes the unregularised system singular: the fitted colours still match numpy's
    gray = x[:1, :1].expand(1, 3, 12, 10)
    fitted = apply_colour(gray, fit_colour(gray, y[:1], ridge=0.0))
    u = np.concatenate([gray[0].flatten(1).T.numpy(), np.ones((120, 1))], 1).astype(np.float64)
    ref, *_ = np.linalg.lstsq(u, y[0].flatten(1).T.numpy().astype(np.float64), rcond=None)
    np.testing.assert_allclose(fitted[0].flatten(1).T.numpy(), np.clip(u @ ref, 0, 1), atol=1e-5)
    # the ridge pulls A towards the identity: a flat crop keeps its own contrast, b absorbs the shift
    flat = torch.full((1, 3, 8, 8), 0.5)
    shifted = fit_colour(flat, flat + 0.1)
    torch.testing.assert_close(shifted[0, :, :3], torch.eye(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(apply_colour(flat, shifted), flat + 0.1, atol=1e-3, rtol=0)


def test_mapping_target_input_colour_trains_and_unknown_target_fails(tmp_path):
    from oldphoto_bench.train import train_stage

    for stage in ("vae-b", "vae-a", "colour"):
        train_stage(stage, "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    out = train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False,
                      overrides=["schedule.steps=2", "data.colour_correct=true", "data.mapping_target=input-colour"])
    assert out.is_file()
    with pytest.raises(KeyError, match="valid names: clean, input-colour"):
        train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False, overwrite=True,
                    overrides=["schedule.steps=1", "data.mapping_target=grey"])


def test_psnr_loss_is_minus_the_mean_psnr_and_the_stage_trains_with_it(tmp_path):
    from oldphoto_bench.metrics.fidelity import psnr
    from oldphoto_bench.train import train_stage
    from oldphoto_bench.train.colour_stage import psnr_loss

    gen = torch_generator(7)
    out, target = torch.rand(4, 3, 8, 8, generator=gen), torch.rand(4, 3, 8, 8, generator=gen)
    # floor 0: the benchmark's own mean PSNR (data range 1), negated
    torch.testing.assert_close(psnr_loss(out, target, floor=0.0), -psnr(out, target).mean().float())
    # the floor adds to each photo's MSE before the log (closed form)
    mse = (out - target).pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(psnr_loss(out, target, floor=0.01), (10 * torch.log10(mse + 0.01)).mean())
    # per photo, not pooled: errors 0.01 and 0.1 on every pixel -> (-40 dB + -20 dB) / 2 = -30 dB, where the
    # pooled MSE (5.05e-3) would give -22.97 dB
    flat = torch.full((2, 3, 4, 4), 0.5)
    shifted = flat + torch.tensor([0.01, 0.1])[:, None, None, None]
    assert float(psnr_loss(shifted, flat, floor=0.0)) == pytest.approx(-30.0, abs=1e-3)
    train_stage("colour", "smoke", runs=tmp_path, data="embedded", progress=False,
                overrides=["schedule.steps=2", "loss.colour=psnr", "loss.colour_floor=0.01"])
    assert (tmp_path / "colour" / "last.pt").is_file()
    with pytest.raises(KeyError, match="psnr"):
        train_stage("colour", "smoke", runs=tmp_path / "bad", data="embedded", progress=False,
                    overrides=["schedule.steps=1", "loss.colour=huber"])


def test_random_window_keeps_the_aspect_and_draws_the_area_share():
    from oldphoto_bench.seeding import numpy_rng
    from oldphoto_bench.train.colour_stage import AgedThumbnails, random_window

    image = torch.arange(1 * 3 * 60 * 90, dtype=torch.float32).view(1, 3, 60, 90)
    assert random_window(image, (1.0, 1.0), numpy_rng(0)) is image
    shares = []
    for seed in range(40):
        win = random_window(image, (0.25, 0.5), numpy_rng(seed))
        h, w = win.shape[-2:]
        shares.append(h * w / (60 * 90))
        assert abs(w / h - 1.5) < 0.05                                   # the photo's aspect ratio
        top, left = int(win[0, 0, 0, 0]) // 90, int(win[0, 0, 0, 0]) % 90  # a window of the photo itself
        assert torch.equal(win, image[..., top:top + h, left:left + w])
        assert torch.equal(win, random_window(image, (0.25, 0.5), numpy_rng(seed)))  # same seed, same window
    assert 0.23 <= min(shares) and max(shares) <= 0.52 and max(shares) - min(shares) > 0.1
    with pytest.raises(ValueError, match="crop must be"):
        AgedThumbnails([], "paper", 16, 32, crop=(0.0, 1.0))


def test_colour_stage_trains_on_random_windows(tmp_path):
    from oldphoto_bench.train import train_stage

    out = train_stage("colour", "smoke", runs=tmp_path, data="embedded", progress=False,
                      overrides=["schedule.steps=2", "data.colour_crop=[0.5,1.0]"])
    assert out.is_file()


def test_levels_affine_sends_each_channels_quantiles_to_the_targets():
    g = torch_generator(21)
    # a faded, tinted photo: channel c spans [lo_c, hi_c]
    x = torch.rand(2, 3, 40, 30, generator=g) * torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1) + 0.3
    affine = levels_affine(x, (0.01, 0.99), (0.05, 0.9))
    out = torch.einsum("nij,njhw->nihw", affine[:, :, :3], x) + affine[:, :, 3, None, None]
    q = np.quantile(out.flatten(2).numpy(), [0.01, 0.99], axis=-1)                 # numpy's quantile, (2, N, 3)
    np.testing.assert_allclose(q[0], 0.05, atol=1e-5)
    np.testing.assert_allclose(q[1], 0.9, atol=1e-5)
    assert torch.equal(affine[:, :, :3], torch.diag_embed(affine[:, :, :3].diagonal(dim1=1, dim2=2)))  # per channel
    flat = torch.full((1, 3, 8, 8), 0.5)                                            # no spread: gain capped
    assert float(levels_affine(flat, (0.01, 0.99), (0.05, 0.9), min_spread=0.2)[0, 0, 0]) == pytest.approx(0.85 / 0.2)


def test_compose_affine_is_the_map_of_applying_both_and_levels_net_starts_at_levels():
    g = torch_generator(22)
    x = torch.rand(2, 3, 9, 7, generator=g)
    inner, outer = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)

    def raw(a, img):  # A x + b without the clamp
        return torch.einsum("nij,njhw->nihw", a[:, :, :3], img) + a[:, :, 3, None, None]

    torch.testing.assert_close(raw(compose_affine(outer, inner), x), raw(outer, raw(inner, x)), atol=1e-5, rtol=1e-5)
    net = GlobalColourNet(size=16, base_channels=4, hidden=8, n_down=2, levels=True, init_seed=3)
    photo = torch.rand(2, 3, 32, 48, generator=g) * 0.5 + 0.25
    start = levels_affine(thumbnail(photo, 16), net.levels_quantiles, net.levels_targets)
    torch.testing.assert_close(net(photo), start)  # zero last layer: the net's own map is the identity
    assert net.head[0].in_features == 8 + 2 * N_STATISTICS  # CNN channels 4, 8
    with pytest.raises(ValueError, match="levels_quantiles"):
        GlobalColourNet(levels=True, levels_quantiles=(0.9, 0.1))


def test_edge_statistics_of_a_colour_ramp_and_the_net_with_them_starts_as_identity():
    # t_c(y, x) = a_c x / w: every forward difference is a_c / w along x and 0 along y, so the gradient
    # magnitude is a_c / w at every pixel (every Minkowski norm of a constant is the constant); pooled by 2 the
    # ramp steps by 2 a_c / w. The chromaticity is a_c / sum(a) at both scales.
    w, a = 32, torch.tensor([0.9, 0.6, 0.3])
    ramp = (torch.arange(w, dtype=torch.float32) / w).view(1, 1, 1, w).expand(1, 3, 16, w) * a.view(1, 3, 1, 1)
    e = edge_statistics(ramp.contiguous()).view(2, 2, 2, 3)                    # (scale, norm, raw|chroma, channel)
    for k, scale in enumerate((1, 2)):
        for j in range(2):
            torch.testing.assert_close(e[k, j, 0], a * scale / w, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(e[k, j, 1], a / a.sum(), atol=1e-5, rtol=1e-4)
    # a flat photo has no edges: the raw values are ~0 and the chromaticity stays finite
    assert torch.isfinite(edge_statistics(torch.full((1, 3, 8, 8), 0.5))).all()
    net = GlobalColourNet(size=16, base_channels=4, hidden=8, n_down=2, edge_stats=True, init_seed=4)
    assert net.head[0].in_features == 8 + N_STATISTICS + N_EDGE_STATISTICS
    photo = torch.rand(2, 3, 24, 40, generator=torch_generator(23))
    assert torch.equal(net.correct(photo), photo)
