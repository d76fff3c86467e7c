"""Unstructured degradation ops, each alone, against independent references (OpenCV, PIL, closed forms)."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto_bench.degrade import OPS
from oldphoto_bench.degrade.unstructured import gaussian_kernel1d
from oldphoto_bench.imageio import to_numpy, to_tensor
from oldphoto_bench.seeding import numpy_rng

UNSTRUCTURED = ["gaussian_blur", "gaussian_noise", "speckle_noise", "salt_pepper", "low_resolution", "jpeg",
                "grayscale"]


def photo(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth, textured test image with exact uint8 values (so PIL round trips are lossless)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], axis=-1)
    base += 0.05 * rng.standard_normal((h, w, 3)).astype(np.float32)
    return to_tensor((np.clip(base, 0, 1) * 255 + 0.5).astype(np.uint8))


def grey(h: int = 256, w: int = 256, value: float = 0.5) -> torch.Tensor:
    return torch.full((1, 3, h, w), value, dtype=torch.float32)


# ---- the contract, for every op --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", UNSTRUCTURED)
def test_contract_shape_range_determinism(name):
    op = OPS.build(name)
    x = photo()
    x_before = x.clone()
    for s in range(5):
        params = op.sample(numpy_rng(s), 48, 64)
        params = json.loads(json.dumps(params))  # params must survive JSON
        y1, m1 = op.apply(x, params)
        y2, m2 = op.apply(x.clone(), params)
        assert m1 is None and m2 is None
        assert y1.shape == x.shape and y1.dtype == torch.float32 and y1.device == x.device
        assert float(y1.min()) >= 0.0 and float(y1.max()) <= 1.0
        assert torch.equal(y1, y2), "same params must give the same bytes"
    assert torch.equal(x, x_before), "apply must not modify its input"


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise", "salt_pepper"])
def test_random_fields_depend_on_seed(name):
    op = OPS.build(name, **({"amount": [0.05, 0.05]} if name == "salt_pepper" else {}))
    x = photo()
    p = op.sample(numpy_rng(0), 48, 64)
    y1, _ = op.apply(x, p)
    y2, _ = op.apply(x, {**p, "seed": p["seed"] + 1})
    assert not torch.equal(y1, y2)


def test_defaults_are_the_released_codes_ranges():
    # online_dataset_for_old_photos.py: blur k in {3,5,7}, std U(1,5); noise std U(5,50)/255;
    # salt-pepper amount U(0,0.01), salt share U(0.3,0.8); low-res randint(w/2, w); JPEG randint(40, 100)
    assert OPS.build("gaussian_blur").config() == {"type": "gaussian_blur", "kernel_sizes": [3, 5, 7],
                                                   "sigma": [1.0, 5.0]}
    assert OPS.build("gaussian_noise").config()["sigma"] == [5.0, 50.0]
    assert OPS.build("speckle_noise").config()["sigma"] == [5.0, 50.0]
    assert OPS.build("salt_pepper").config() == {"type": "salt_pepper", "amount": [0.0, 0.01],
                                                 "salt_share": [0.3, 0.8]}
    assert OPS.build("low_resolution").config()["scale"] == [0.5, 1.0]
    assert OPS.build("jpeg").config()["quality"] == [40, 100]


@pytest.mark.parametrize("name", UNSTRUCTURED)
def test_sampled_params_stay_in_range(name):
    op = OPS.build(name)
    for s in range(200):
        p = op.sample(numpy_rng(s), 100, 80)
        if name == "gaussian_blur":
            assert p["kernel_size"] in (3, 5, 7) and 1.0 <= p["sigma"] <= 5.0
        elif name in ("gaussian_noise", "speckle_noise"):
            assert 5.0 <= p["sigma"] <= 50.0
        elif name == "salt_pepper":
            assert 0.0 <= p["amount"] <= 0.01 and 0.3 <= p["salt_share"] <= 0.8
        elif name == "low_resolution":
            assert 50 <= p["new_h"] <= 100 and 40 <= p["new_w"] <= 80 and p["up"] in ("nearest", "bilinear")
        elif name == "jpeg":
            assert 40 <= p["quality"] <= 100 and isinstance(p["quality"], int)


def test_bad_ranges_fail_loudly():
    with pytest.raises(ValueError):
        OPS.build({"type": "gaussian_blur", "kernel_sizes": [4]})
    with pytest.raises(ValueError):
        OPS.build({"type": "gaussian_noise", "sigma": [50, 5]})
    with pytest.raises(ValueError):
        OPS.build({"type": "jpeg", "quality": [0, 200]})
    with pytest.raises(ValueError):
        OPS.build({"type": "low_resolution", "scale": [0.5, 1.5]})
    with pytest.raises(ValueError):
        OPS.build({"type": "salt_pepper", "salt_share": [0.5, 1.5]})


# ---- blur --------------------------------------------------------------------------------------------------------
def test_gaussian_kernel_matches_opencv():
    for k, s in [(3, 1.0), (5, 2.5), (7, 5.0)]:
        ref = cv2.getGaussianKernel(k, s, cv2.CV_64F).ravel()
        np.testing.assert_allclose(gaussian_kernel1d(k, s).numpy(), ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k,sigma", [(3, 1.0), (5, 2.3), (7, 4.9)])
def test_blur_matches_cv2_gaussian_blur(k, sigma):
    x = photo(37, 53)
    y, _ = OPS.build("gaussian_blur").apply(x, {"kernel_size": k, "sigma": sigma})
    # cv2.GaussianBlur with BORDER_DEFAULT (reflect-101): the released code's call; borders included
    ref = cv2.GaussianBlur(to_numpy(x), (k, k), sigma)
    np.testing.assert_allclose(to_numpy(y), ref, atol=2e-6)


# ---- noise -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [5.0, 30.0])
def test_gaussian_noise_statistics(sigma):
    x = grey()
    y, _ = OPS.build("gaussian_noise").apply(x, {"sigma": sigma, "seed": 7})
    d = (y - x).numpy().ravel().astype(np.float64)
    n, s = d.size, sigma / 255.0
    assert abs(d.mean()) < 4 * s / np.sqrt(n)
    assert abs(d.std() / s - 1) < 0.01  # clipping at 0.5 +- 4.3 s is negligible
    # independent across channels and neighbouring pixels
    r = (y - x)[0].numpy()
    assert abs(np.corrcoef(r[0].ravel(), r[1].ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(r[0, :, 1:].ravel(), r[0, :, :-1].ravel())[0, 1]) < 0.02


def test_speckle_noise_is_multiplicative():
    sigma = 20.0  # small enough that clipping at 1 is > 4 standard deviations away at level 0.75
    x = torch.cat([grey(128, 256, 0.25), grey(128, 256, 0.75)], dim=2)
    y, _ = OPS.build("speckle_noise").apply(x, {"sigma": sigma, "seed": 3})
    d = (y - x)[0].numpy()
    for rows, level in [(slice(0, 128), 0.25), (slice(128, 256), 0.75)]:
        part = d[:, rows].ravel().astype(np.float64)
        s = level * sigma / 255.0
        assert abs(part.mean()) < 4 * s / np.sqrt(part.size)
        assert abs(part.std() / s - 1) < 0.015
    black = torch.zeros(1, 3, 16, 16)
    assert torch.equal(OPS.build("speckle_noise").apply(black, {"sigma": 50.0, "seed": 1})[0], black)


def test_clipping_keeps_range_on_extremes():
    x = torch.cat([grey(32, 32, 0.0), grey(32, 32, 1.0)], dim=3)
    y, _ = OPS.build("gaussian_noise").apply(x, {"sigma": 50.0, "seed": 1})
    assert float(y.min()) == 0.0 and float(y.max()) == 1.0


def test_salt_pepper_fraction_and_share():
    amount, share = 0.05, 0.6
    x = grey()
    y, _ = OPS.build("salt_pepper").apply(x, {"amount": amount, "salt_share": share, "seed": 11})
    y = y[0].numpy()
    # all channels of a pixel change together
    assert (y == y[0:1]).all()
    hit = y[0] != 0.5
    n = hit.size
    frac = hit.mean()
    assert abs(frac - amount) < 4 * np.sqrt(amount * (1 - amount) / n)
    salt = (y[0] == 1.0) & hit
    pepper = (y[0] == 0.0) & hit
    assert (salt | pepper)[hit].all()
    k = hit.sum()
    assert abs(salt.sum() / k - share) < 4 * np.sqrt(share * (1 - share) / k)
    assert pepper.sum() > 0
    # untouched pixels are bit-identical
    assert (y[:, ~hit] == np.float32(0.5)).all()


def test_salt_pepper_zero_amount_is_identity():
    x = photo()
    y, _ = OPS.build("salt_pepper").apply(x, {"amount": 0.0, "salt_share": 0.5, "seed": 2})
    assert torch.equal(y, x)


# ---- low resolution ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("up", ["nearest", "bilinear"])
def test_low_resolution_scale_one_is_identity(up):
    x = photo()
    y, _ = OPS.build("low_resolution").apply(x, {"new_h": 48, "new_w": 64, "up": up})
    assert torch.equal(y, x)
    # and sampling with scale (1, 1) always keeps the size
    op = OPS.build({"type": "low_resolution", "scale": [1.0, 1.0]})
    p = op.sample(numpy_rng(0), 48, 64)
    assert (p["new_h"], p["new_w"]) == (48, 64)


def _pil_resize_float(a: np.ndarray, size_wh: tuple[int, int], resample: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(a[..., c], mode="F").resize(size_wh, resample))
                     for c in range(a.shape[-1])], axis=-1)


@pytest.mark.parametrize("up,pil_up", [("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR)])
def test_low_resolution_matches_pil_resize(up, pil_up):
    x = photo(60, 80)
    new_h, new_w = 37, 45
    y, _ = OPS.build("low_resolution").apply(x, {"new_h": new_h, "new_w": new_w, "up": up})
    # the released code's PIL resizes, on float ('F') images so that only the resampling is compared
    small = np.clip(_pil_resize_float(to_numpy(x), (new_w, new_h), Image.BICUBIC), 0, 1)
    ref = np.clip(_pil_resize_float(small, (80, 60), pil_up), 0, 1)
    np.testing.assert_allclose(to_numpy(y), ref, atol=1e-4)


def test_low_resolution_removes_detail():
    x = photo(64, 64)
    y, _ = OPS.build("low_resolution").apply(x, {"new_h": 32, "new_w": 32, "up": "nearest"})
    yy = y[0].numpy()
    # nearest up-sampling by exactly 2 repeats every pixel in 2x2 blocks
    assert (yy[:, 0::2, 0::2] == yy[:, 1::2, 1::2]).all()


def test_low_resolution_samples_both_up_modes():
    op = OPS.build("low_resolution")
    modes = [op.sample(numpy_rng(s), 64, 64)["up"] for s in range(400)]
    assert 150 < modes.count("nearest") < 250


# ---- JPEG --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quality", [40, 75, 100])
def test_jpeg_equals_pil_roundtrip(quality):
    x = photo(40, 56)
    y, _ = OPS.build("jpeg").apply(x, {"quality": quality})
    arr = (to_numpy(x) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float32) / 255
    np.testing.assert_array_equal(to_numpy(y), ref)
    if quality < 100:
        assert not torch.equal(y, x)


# ---- grayscale ---------------------------------------------------------------------------------------------------
def test_grayscale_matches_pil_convert_l():
    x = photo(40, 56, seed=3)
    y, _ = OPS.build("grayscale").apply(x, {})
    arr = (to_numpy(x) * 255 + 0.5).astype(np.uint8)
    ref = np.asarray(Image.fromarray(arr).convert("L")).astype(np.float32) / 255
    yy = to_numpy(y)
    assert (yy == yy[..., :1]).all()
    np.testing.assert_allclose(yy[..., 0], ref, atol=1 / 255 + 1e-6)


# ---- devices -----------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", UNSTRUCTURED)
def test_cuda_matches_cpu(name):
    op = OPS.build(name)
    x = photo()
    for s in range(3):
        p = op.sample(numpy_rng(s), 48, 64)
        y_cpu, _ = op.apply(x, p)
        y_gpu, _ = op.apply(x.cuda(), p)
        assert y_gpu.device.type == "cuda" and y_gpu.dtype == torch.float32
        # same random fields; arithmetic may differ in the last bits (JPEG input rounding at most 1/255)
        np.testing.assert_allclose(y_gpu.cpu().numpy(), y_cpu.numpy(), atol=1e-5 if name != "jpeg" else 0.05)
