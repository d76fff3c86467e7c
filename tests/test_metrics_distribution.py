"""FID and KID with injected feature extractors against closed forms and a dense reference; the FID Inception
architecture, its TF1 resize and its weights loader (with a stand-in weights file)."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oldphoto_bench.metrics import FID, KID, MetricUnavailable, try_build
from oldphoto_bench.metrics.inception import (
    FIDInceptionA,
    FIDInceptionE,
    random_fid_inception,
    resize_bilinear_tf1,
)
from oldphoto_bench.metrics.weights import CATALOGUE, WeightsFile
from oldphoto_bench.seeding import numpy_rng, torch_generator
from oldphoto_bench.stats import frechet_distance_sets


def channel_means(x: torch.Tensor) -> torch.Tensor:
    """A 3-d feature: the mean of each channel. Adding a constant c to an image adds c to its features."""
    return x.mean(dim=(2, 3))


def image_set(n=40, seed=0, lo=0.0, hi=0.5):
    return lo + (hi - lo) * torch.rand(n, 3, 8, 8, generator=torch_generator(seed))


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An environment where no weights file can be found (empty torch hub cache, no $OLDPHOTO_WEIGHTS)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("OLDPHOTO_WEIGHTS", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_fid_of_a_set_against_itself_is_zero():
    x = image_set()
    fid = FID(feature_extractor=channel_means)
    assert fid(x, x).value == pytest.approx(0.0, abs=1e-6)


def test_fid_equal_covariance_is_squared_mean_difference():
    x = image_set()
    c = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    # shifting every image by c shifts every feature by c: equal sample covariances, means differ by c
    score = FID(feature_extractor=channel_means)(x + c, x)
    assert score.value == pytest.approx(0.01 + 0.04 + 0.09, rel=1e-6)
    assert score.n_pred == score.n_target == len(x) and score.std is None


def test_fid_closed_form_with_a_linear_extractor():
    w = torch.randn(3 * 8 * 8, 16, generator=torch_generator(1), dtype=torch.float64)

    def project(x):
        return x.double().flatten(1) @ w

    x = image_set(n=64)
    shift = 0.3 * torch.rand(1, 3, 8, 8, generator=torch_generator(2))
    expect = float(((shift.double().flatten(1) @ w) ** 2).sum())
    assert FID(feature_extractor=project)(x + shift, x).value == pytest.approx(expect, rel=1e-5)


def test_fid_streaming_equals_one_shot_and_cached_reference_features():
    x, y = image_set(seed=3), image_set(seed=4, lo=0.2, hi=0.9)
    fid = FID(feature_extractor=channel_means, batch_size=7)
    one_shot = fid(x, y).value
    for i in range(0, 40, 16):
        fid.update(x[i:i + 16])
    fid.update_features(target_feats=fid.features(y))
    assert fid.compute().value == pytest.approx(one_shot, rel=1e-12)
    fid.reset()
    with pytest.raises(ValueError, match="before compute"):
        fid.compute()


@pytest.mark.parametrize("n", [50, 12])  # full-rank and singular (n < d) covariances
def test_fid_trace_term_equals_scipy_sqrtm(n):
    rng = numpy_rng(9)
    a, b = rng.normal(size=(n, 20)), rng.normal(0.3, 1.5, size=(n, 20))
    ours = FID(feature_extractor=channel_means).score_features(a, b).value
    assert ours == pytest.approx(frechet_distance_sets(a, b), rel=1e-6)


def test_set_metrics_need_two_images_per_set():
    x = image_set(n=3)
    with pytest.raises(ValueError, match="at least 2"):
        FID(feature_extractor=channel_means)(x[:1], x)


def poly_kernel_dense(a, b):
    d = a.shape[1]
    return np.array([[(float(np.dot(u, v)) / d + 1.0) ** 3 for v in b] for u in a])


def mmd2_dense(x, y):
    """Unbiased MMD^2 written out with explicit loops (the reference)."""
    kxx, kyy, kxy = poly_kernel_dense(x, x), poly_kernel_dense(y, y), poly_kernel_dense(x, y)
    n, m = len(x), len(y)
    sxx = sum(kxx[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    syy = sum(kyy[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()


def test_kid_whole_set_subset_equals_dense_unbiased_mmd():
    rng = numpy_rng(5)
    a, b = rng.normal(size=(12, 4)), rng.normal(0.5, 1.0, size=(10, 4))
    kid = KID(feature_extractor=channel_means, subsets=3, subset_size=1000)
    s = kid.score_features(a, b)  # subset size min(1000, 12, 10) = 10: a subsample of a, all of b
    assert s.n_pred == 12 and s.n_target == 10
    kid_full = KID(feature_extractor=channel_means, subsets=2, subset_size=1000).score_features(a[:10], b)
    assert kid_full.value == pytest.approx(mmd2_dense(a[:10], b), rel=1e-10)  # permutations do not matter
    assert kid_full.std == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(s.value) and s.std >= 0


def test_kid_of_point_masses_is_the_kernel_distance():
    a, b = np.array([0.2, -0.4, 1.0]), np.array([0.5, 0.1, -0.3])
    x, y = np.tile(a, (6, 1)), np.tile(b, (5, 1))
    d = 3

    def k(u, v):
        return (np.dot(u, v) / d + 1) ** 3

    expect = k(a, a) + k(b, b) - 2 * k(a, b)
    assert KID(feature_extractor=channel_means, subsets=4).score_features(x, y).value == pytest.approx(expect)


def test_kid_subsets_are_seeded_and_read_zero_on_equal_distributions():
    rng = numpy_rng(6)
    a, b = rng.normal(size=(60, 5)), rng.normal(size=(60, 5))
    kw = dict(feature_extractor=channel_means, subsets=20, subset_size=30)
    s1, s2 = KID(seed=1, **kw).score_features(a, b), KID(seed=1, **kw).score_features(a, b)
    assert s1 == s2
    assert KID(seed=2, **kw).score_features(a, b).value != s1.value
    shifted = KID(seed=1, **kw).score_features(a + 1.0, b)
    assert abs(s1.value) < 3 * s1.std + 1e-3 and shifted.value > 10 * max(abs(s1.value), s1.std)


def test_missing_inception_weights_make_fid_and_kid_unavailable(no_weights):
    for name in ("fid", "kid"):
        metric, reason = try_build(name, weights_dir=no_weights)
        assert metric is None
        assert "pt_inception-2015-12-05-6726825d.pth" in reason
        assert "oldphoto-bench weights fetch inception-fid" in reason and str(no_weights) in reason
    with pytest.raises(MetricUnavailable):
        FID(weights_dir=no_weights)


def test_fid_loads_a_verified_weights_file_strictly(tmp_path, no_weights):
    # a stand-in weights file with the real architecture (random weights) and its own digest in the catalogue
    model = random_fid_inception(seed=7)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(model.net.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    real = CATALOGUE["inception-fid"]
    cat = {"inception-fid": WeightsFile(key="inception-fid", filenames=real.filenames, url=real.url,
                                        used_by=real.used_by, description="stand-in", sha256=digest)}
    x = torch.rand(2, 3, 40, 48, generator=torch_generator(8))
    fid = FID(weights_dir=tmp_path, catalogue=cat)
    assert fid.settings["weights"] == str(path) and fid.settings["preprocess"] == "torch-fidelity"
    feats = fid.features(x)
    assert feats.shape == (2, 2048)
    with torch.no_grad():
        assert np.allclose(feats, model(x).double().numpy(), atol=1e-5)
    wrong = {"inception-fid": WeightsFile(key="inception-fid", filenames=real.filenames, url=real.url,
                                          used_by=real.used_by, description="stand-in", sha256="0" * 64)}
    with pytest.raises(MetricUnavailable, match="SHA-256"):
        FID(weights_dir=tmp_path, catalogue=wrong)


def test_fid_inception_architecture_matches_the_port():
    model = random_fid_inception(seed=0)
    sd = model.net.state_dict()
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert sd["fc.weight"].shape == (1008, 2048) and sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert model.net.Conv2d_1a_3x3.bn.eps == pytest.approx(1e-3)
    x = torch.rand(2, 3, 33, 47, generator=torch_generator(1))
    with torch.no_grad():
        f = model(x)
        assert f.shape == (2, 2048) and (f >= 0).all()
    again = random_fid_inception(seed=0).net.state_dict()  # seeded
    assert all(torch.equal(v, again[k]) for k, v in sd.items())


def test_fid_blocks_pool_like_tensorflow():
    g = torch_generator(2)
    block = FIDInceptionA(8, pool_features=4).eval()
    for p in block.parameters():
        p.data.copy_(torch.randn(p.shape, generator=g))
    with torch.no_grad():
        # TF "SAME" average pooling ignores padding: a constant input stays constant up to the borders
        out = block(torch.full((1, 8, 6, 6), 0.7))[:, -4:]
        assert torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-6)
        last = FIDInceptionE(8, pool="max").eval()
        x = torch.randn(1, 8, 5, 5, generator=g)
        expect = last.branch_pool(F.max_pool2d(x, 3, stride=1, padding=1))
        assert torch.allclose(last(x)[:, -192:], expect)


def tf1_bilinear_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Per-pixel TF1 resize_bilinear(align_corners=False): src = dst * in / out, no half-pixel offset."""
    h, w = img.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        sy = i * h / out_h
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for j in range(out_w):
            sx = j * w / out_w
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize("size_in,size_out", [((7, 5), (4, 9)), ((10, 12), (23, 17)), ((8, 8), (8, 3))])
def test_tf1_resize_matches_the_per_pixel_definition(size_in, size_out):
    img = np.random.default_rng(0).random(size_in)
    ours = resize_bilinear_tf1(torch.from_numpy(img)[None, None], size_out)[0, 0].numpy()
    assert np.allclose(ours, tf1_bilinear_reference(img, *size_out), atol=1e-12)


def test_tf1_resize_closed_forms():
    x = torch.rand(1, 3, 12, 10, generator=torch_generator(3), dtype=torch.float64)
    assert torch.equal(resize_bilinear_tf1(x, (12, 10)), x)
    assert torch.allclose(resize_bilinear_tf1(x, (6, 5)), x[:, :, ::2, ::2])  # integer downscale: subsample
    up = resize_bilinear_tf1(x, (24, 10))
    assert torch.allclose(up[:, :, ::2], x)
    assert torch.allclose(up[:, :, 1:-1:2], (x[:, :, :-1] + x[:, :, 1:]) / 2)
    assert torch.allclose(up[:, :, -1], x[:, :, -1])  # clamped at the last row, not extrapolated
