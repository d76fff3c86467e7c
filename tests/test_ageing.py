"""Blend modes against their closed forms, and the global ageing / texture ops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from oldphoto_bench.degrade import OPS
from oldphoto_bench.degrade.ageing import SEPIA_MATRIX, value_noise
from oldphoto_bench.degrade.blend import BLEND_MODES, blend
from oldphoto_bench.seeding import numpy_rng

GLOBAL = ["paper_texture", "film_grain", "fade", "yellowing", "sepia", "contrast_brightness", "vignette"]


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ---- blend modes --------------------------------------------------------------------------------------------
CLOSED_FORMS = {
    "normal": lambda a, b: np.broadcast_to(b, a.shape),
    "addition": lambda a, b: np.minimum(a + b, 1.0),
    "screen": lambda a, b: 1.0 - (1.0 - a) * (1.0 - b),
    "lighten": np.maximum,
    "multiply": lambda a, b: a * b,
    "darken": np.minimum,
    "overlay": lambda a, b: np.where(a < 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b)),
}


def test_every_mode_has_a_closed_form_test():
    assert set(BLEND_MODES.names()) == set(CLOSED_FORMS)


@pytest.mark.parametrize("mode", sorted(CLOSED_FORMS))
def test_blend_modes_match_closed_forms(mode):
    a, b = rand(1, 3, 16, 16, seed=1), rand(1, 3, 16, 16, seed=2)
    a64, b64 = a.double().numpy(), b.double().numpy()
    assert np.allclose(BLEND_MODES.get(mode)(a, b).numpy(), CLOSED_FORMS[mode](a64, b64), atol=1e-6)
    # a (1, 3, 1, 1) colour layer broadcasts
    c = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    assert np.allclose(BLEND_MODES.get(mode)(a, c).numpy(), CLOSED_FORMS[mode](a64, c.double().numpy()), atol=1e-6)
    # alpha compositing: base (1 - alpha) + mode(base, layer) alpha
    alpha = rand(1, 1, 16, 16, seed=3)
    ref = a64 * (1 - alpha.double().numpy()) + CLOSED_FORMS[mode](a64, b64) * alpha.double().numpy()
    assert np.allclose(blend(a, b, alpha, mode).numpy(), ref, atol=1e-6)
    assert torch.equal(blend(a, b, 0.0, mode), a)  # zero coverage: exactly the base
    out = blend(a, b, 1.0, mode)
    assert out.min() >= 0 and out.max() <= 1


def test_unknown_blend_mode_lists_valid_ones():
    with pytest.raises(KeyError, match="multiply"):
        blend(rand(1, 3, 2, 2), rand(1, 3, 2, 2), 0.5, "dodge")


# ---- the contract, for every global op ----------------------------------------------------------------------
@pytest.mark.parametrize("name", GLOBAL)
def test_global_contract(name):
    op = OPS.build(name)
    assert not op.structured
    x = rand(1, 3, 40, 56)
    x0 = x.clone()
    p = op.sample(numpy_rng(0), 40, 56)
    assert p == op.sample(numpy_rng(0), 40, 56)
    out, mask = op.apply(x, json.loads(json.dumps(p)))
    assert mask is None and torch.equal(x, x0)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    out2, _ = OPS.build(op.config()).apply(x, p)
    assert torch.equal(out, out2)


@pytest.mark.parametrize("name", ["fade", "yellowing", "sepia"])
def test_zero_amount_is_identity(name):
    op = OPS.build({"type": name, "amount": [0.0, 0.0]})
    x = rand(1, 3, 24, 24)
    out, _ = op.apply(x, op.sample(numpy_rng(0), 24, 24))
    assert torch.equal(out, x)


def test_sepia_full_amount_is_the_sepia_matrix():
    x = rand(1, 3, 8, 8)
    out, _ = OPS.build("sepia").apply(x, {"amount": 1.0})
    ref = np.clip(np.einsum("oc,chw->ohw", np.array(SEPIA_MATRIX), x[0].double().numpy()), 0, 1)
    assert np.allclose(out[0].numpy(), ref, atol=1e-6)


def test_fade_maps_black_and_white_to_lifted_points():
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2).contiguous()
    out, _ = OPS.build("fade").apply(x, {"amount": 0.4, "black": 0.5, "white": 0.25})
    lo, hi = 0.4 * 0.5, 1 - 0.4 * 0.25
    assert np.allclose(out[0, :, 0, 0].numpy(), [lo, lo + 0.5 * (hi - lo), hi], atol=1e-7)


def test_yellowing_keeps_red_and_lowers_blue_most():
    x = rand(1, 3, 16, 16)
    out, _ = OPS.build("yellowing").apply(x, {"amount": 0.5, "tint": [1.0, 0.9, 0.6]})
    assert torch.allclose(out[:, 0], x[:, 0], atol=1e-6)
    assert torch.allclose(out[:, 1], x[:, 1] * 0.95, atol=1e-6)
    assert torch.allclose(out[:, 2], x[:, 2] * 0.8, atol=1e-6)


def test_contrast_brightness_closed_form():
    x = 0.3 + 0.4 * rand(1, 3, 16, 16)  # mid-range: no clipping
    y = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean()
    out, _ = OPS.build("contrast_brightness").apply(x, {"contrast": 1.2, "brightness": 0.05})
    assert torch.allclose(out, (x - y) * 1.2 + y + 0.05, atol=1e-6)
    same, _ = OPS.build("contrast_brightness").apply(x, {"contrast": 1.0, "brightness": 0.0})
    assert torch.allclose(same, x, atol=1e-6)


def test_film_grain_is_monochrome_zero_mean_with_the_given_strength():
    x = torch.full((1, 3, 128, 128), 0.5)  # mid grey: g(Y) = 1, so std = intensity
    out, _ = OPS.build("film_grain").apply(x, {"seed": 3, "intensity": 0.04, "sigma": 0.7})
    d = out - x
    assert torch.allclose(d[:, 0], d[:, 1]) and torch.allclose(d[:, 0], d[:, 2])
    assert abs(float(d.mean())) < 0.004 and float(d.std()) == pytest.approx(0.04, rel=0.05)
    # weaker in the shadows: g(0.1) = 0.4 + 2.4 * 0.09 = 0.616
    dark, _ = OPS.build("film_grain").apply(x * 0.2, {"seed": 3, "intensity": 0.04, "sigma": 0.7})
    assert float((dark - x * 0.2).std()) == pytest.approx(0.04 * 0.616, rel=0.1)


@pytest.mark.parametrize("mode", ["multiply", "screen", "lighten", "addition", "overlay"])
def test_paper_texture_modes(mode):
    op = OPS.build({"type": "paper_texture", "modes": [mode]})
    x = rand(1, 3, 64, 64)
    p = op.sample(numpy_rng(1), 64, 64)
    t = op.texture(p, 64, 64)
    assert t.shape == (64, 64) and t.min() >= 0 and t.max() <= 1 and t.std() > 0.05
    out, _ = op.apply(x, p)
    if mode == "multiply":
        assert (out <= x + 1e-6).all()
    elif mode != "overlay":
        assert (out >= x - 1e-6).all()
    assert float((out - x).abs().mean()) > 1e-3


def test_value_noise_is_standardised():
    n = value_noise(numpy_rng(0), 64, 80, cell=8.0)
    assert n.shape == (64, 80) and abs(n.mean()) < 1e-4 and n.std() == pytest.approx(1.0, rel=1e-3)


def test_vignette_darkens_corners_more_than_centre():
    x = torch.full((1, 3, 64, 64), 0.8)
    out, _ = OPS.build("vignette").apply(x, {"strength": 0.5, "inner": 0.3, "centre": [0.5, 0.5]})
    assert (out <= x).all() and out[0, 0, 32, 32] == pytest.approx(0.8) and out[0, 0, 0, 0] < 0.5
