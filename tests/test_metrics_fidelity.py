"""PSNR, SSIM, MS-SSIM against scikit-image and piq; infinite PSNR and aggregation; the piq and no-reference
wrappers' directions and closed forms; the metric contract."""

import json
import math

import numpy as np
import piq
import pytest
import torch
from scipy import stats
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from oldphoto_bench.metrics import METRICS, aggregate, build_metric, ms_ssim, psnr, ssim, try_build
from oldphoto_bench.seeding import torch_generator


def pair(n=3, h=48, w=40, noise=0.1, seed=0):
    g = torch_generator(seed)
    x = torch.rand(n, 3, h, w, generator=g)
    y = (x + noise * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return x, y


def hwc(t):
    return t.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("shape", [(48, 40), (33, 57)])
def test_psnr_rgb_equals_scikit_image(shape):
    x, y = pair(h=shape[0], w=shape[1])
    ours = psnr(y, x)
    for i in range(len(x)):
        ref = peak_signal_noise_ratio(hwc(x[i]), hwc(y[i]), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)


def test_psnr_y_equals_scikit_image_ycbcr_luma():
    x, y = pair()
    ours = build_metric("psnr", channels="y")(y, x)
    for i in range(len(x)):
        # skimage's rgb2ycbcr gives BT.601 Y in [16, 235] for float input in [0, 1]
        yx, yy = rgb2ycbcr(hwc(x[i]))[..., 0], rgb2ycbcr(hwc(y[i]))[..., 0]
        assert ours[i].item() == pytest.approx(peak_signal_noise_ratio(yx, yy, data_range=255.0), abs=1e-9)


def test_psnr_data_range_scales_the_peak():
    x, y = pair()
    assert torch.allclose(psnr(y * 255, x * 255, data_range=255.0), psnr(y, x), atol=1e-9)


def test_identical_images_give_infinite_psnr_and_aggregate_reports_them():
    x, y = pair(n=4)
    y[1] = x[1]
    vals = build_metric("psnr")(y, x)
    assert math.isinf(vals[1].item()) and vals[1].item() > 0
    assert torch.isfinite(vals[[0, 2, 3]]).all()
    agg = aggregate(vals)
    finite = vals[[0, 2, 3]].numpy()
    assert agg.n == 4 and agg.n_finite == 3 and agg.n_posinf == 1 and agg.n_nan == 0
    assert agg.mean == pytest.approx(finite.mean())
    lo, hi = stats.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=stats.sem(finite))
    assert agg.ci95 == pytest.approx((hi - lo) / 2)
    assert "+inf x1" in agg.format()


def test_aggregate_edge_cases():
    all_inf = aggregate([float("inf"), float("inf")])
    assert math.isnan(all_inf.mean) and all_inf.n_posinf == 2 and all_inf.format().startswith("n/a")
    one = aggregate([2.0, float("nan")])
    assert one.mean == 2.0 and math.isnan(one.ci95) and one.n_nan == 1


@pytest.mark.parametrize("shape,data_range", [((48, 40), 1.0), ((31, 64), 1.0), ((40, 40), 2.0)])
def test_ssim_equals_scikit_image(shape, data_range):
    x, y = pair(h=shape[0], w=shape[1], seed=3)
    ours = ssim(y, x, data_range=data_range)
    for i in range(len(x)):
        ref = structural_similarity(hwc(x[i]), hwc(y[i]), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=data_range, channel_axis=2)
        assert ours[i].item() == pytest.approx(ref, abs=1e-5)


def test_ssim_y_equals_scikit_image_on_luma():
    x, y = pair(seed=4)
    ours = build_metric("ssim", channels="y")(y, x)
    for i in range(len(x)):
        yx, yy = rgb2ycbcr(hwc(x[i]))[..., 0] / 255.0, rgb2ycbcr(hwc(y[i]))[..., 0] / 255.0
        ref = structural_similarity(yx, yy, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-5)


def test_ssim_identical_is_one_and_small_images_fail_loudly():
    x, _ = pair()
    assert torch.allclose(ssim(x, x), torch.ones(len(x), dtype=torch.float64))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(x[:, :, :10, :10], x[:, :, :10, :10])


# sizes whose two sides have equal parity at every scale; piq pads both sides when only one is odd
@pytest.mark.parametrize("shape", [(192, 256), (161, 161), (200, 232)])
def test_ms_ssim_equals_piq(shape):
    x, y = pair(n=2, h=shape[0], w=shape[1], noise=0.15, seed=5)
    ref = piq.multi_scale_ssim(x.double(), y.double(), data_range=1.0, reduction="none")
    assert torch.allclose(ms_ssim(y, x), ref, atol=1e-6)


def test_ms_ssim_identical_and_minimum_size():
    x, _ = pair(n=1, h=161, w=170)
    assert ms_ssim(x, x).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="161"):
        ms_ssim(x[:, :, :160], x[:, :, :160])


PIQ_METRICS = ["haarpsi", "gmsd", "ms_gmsd", "mdsi", "vsi", "fsim", "vif"]


@pytest.mark.parametrize("name", PIQ_METRICS)
def test_piq_metrics_identity_and_direction(name):
    m = build_metric(name)
    x, mild = pair(n=2, h=64, w=64, noise=0.02, seed=6)
    _, strong = pair(n=2, h=64, w=64, noise=0.3, seed=6)
    same, a, b = m(x, x), m(mild, x), m(strong, x)
    best = 1.0 if m.higher_is_better else 0.0
    assert torch.allclose(same, torch.full_like(same, best), atol=1e-4)
    better = (a > b) if m.higher_is_better else (a < b)  # less noise scores better in the declared direction
    assert better.all(), (name, a, b)


def test_piq_wrappers_clamp_out_of_range_inputs():
    x, y = pair(n=1, h=64, w=64)
    over = y * 1.2 - 0.1  # restored outputs can overshoot [0, 1]
    assert torch.isfinite(build_metric("haarpsi")(over, x)).all()
    with pytest.raises(TypeError, match="unknown parameters"):
        build_metric("gmsd", bogus=1)


def test_colourfulness_closed_forms():
    gray = torch.full((1, 3, 8, 8), 0.4)
    assert build_metric("colourfulness")(gray).item() == pytest.approx(0.0, abs=1e-9)
    # left half pure red, right half pure blue: rg in {255, 0}, yb in {127.5, -255}
    img = torch.zeros(1, 3, 8, 8)
    img[:, 0, :, :4] = 1.0
    img[:, 2, :, 4:] = 1.0
    s_rg, s_yb = 255 / 2, (127.5 + 255) / 2
    m_rg, m_yb = 255 / 2, (127.5 - 255) / 2
    expect = math.hypot(s_rg, s_yb) + 0.3 * math.hypot(m_rg, m_yb)
    assert build_metric("colourfulness")(img).item() == pytest.approx(expect)


def test_total_variation_of_stripes():
    w = 10
    img = torch.zeros(1, 3, 6, w)
    img[..., ::2] = 1.0  # every horizontal neighbour differs by 1, vertical ones by 0
    assert build_metric("tv")(img).item() == pytest.approx((w - 1) / w)


def test_blur_effect_rises_with_blur():
    import torch.nn.functional as F

    x, _ = pair(n=2, h=64, w=64, noise=0.0)
    blurred = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    m = build_metric("blur_effect")
    assert (m(blurred) > m(x)).all()


def test_contracts_are_complete_and_serialisable():
    for name in METRICS.names():
        m, reason = try_build(name)
        if m is None:  # weights missing here: the reason says which and how to fetch
            assert "oldphoto-bench weights fetch" in reason
            continue
        c = m.contract()
        assert c["name"] == name == name.lower()
        assert c["kind"] in ("per_image", "per_set") and c["reference"] in ("full", "none")
        assert isinstance(c["higher_is_better"], bool) and c["notes"]
        json.dumps(c)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(KeyError, match="psnr"):
        build_metric("psnrr")


def test_full_reference_metric_needs_a_reference_and_matching_shapes():
    x, y = pair()
    with pytest.raises(ValueError, match="full-reference"):
        build_metric("psnr")(x)
    with pytest.raises(ValueError, match="differ"):
        build_metric("ssim")(x, y[:, :, :20])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        build_metric("psnr")(x[0], y[0])


def test_psnr_does_not_depend_on_batch_composition():
    x, y = pair(n=4)
    full = psnr(y, x)
    assert torch.allclose(torch.cat([psnr(y[:2], x[:2]), psnr(y[2:], x[2:])]), full)
    assert np.all(np.isfinite(full.numpy()))


def test_sharpness_closed_forms_and_blur():
    gray = torch.full((1, 3, 8, 8), 0.4)
    assert build_metric("sharpness")(gray).item() == pytest.approx(0.0, abs=1e-12)
    # a horizontal ramp of slope 0.01 per pixel (same in every channel, so luma = the ramp) scores 0.01
    ramp = (torch.arange(20, dtype=torch.float32) * 0.01).view(1, 1, 1, 20).expand(1, 3, 12, 20)
    assert build_metric("sharpness")(ramp).item() == pytest.approx(0.01, rel=1e-5)
    # the same ramp along y: the Sobel pair is symmetric
    assert build_metric("sharpness")(ramp.transpose(-1, -2)).item() == pytest.approx(0.01, rel=1e-5)
    # a blurred random image is less sharp than the image (and the ratio is what the real-photo table reports)
    from scipy.ndimage import gaussian_filter

    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    blurred = torch.from_numpy(gaussian_filter(img.numpy(), sigma=(0, 0, 1.5, 1.5))).float()
    assert build_metric("sharpness")(blurred).item() < 0.5 * build_metric("sharpness")(img).item()
