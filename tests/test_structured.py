"""Structured defects (scratches, cracks, creases, dust, torn) and the paper / light / heavy presets.

The central property: the damage mask is pixel-exact. Every pixel outside it is bit-identical to the input,
and most pixels inside it really changed. Rasterisation and compositing are checked against closed forms.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from scipy import ndimage
from skimage import data, transform

from oldphoto_bench.config import load_config
from oldphoto_bench.degrade import OPS, Synthesizer
from oldphoto_bench.degrade.strokes import Canvas, composite, cubic_bezier, jagged_path
from oldphoto_bench.imageio import to_tensor
from oldphoto_bench.seeding import numpy_rng

STRUCTURED = ["scratches", "cracks", "creases", "dust", "torn"]
SEEDS = range(5)


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return to_tensor(transform.resize(data.astronaut(), (128, 128), anti_aliasing=True))


def run(name: str, image: torch.Tensor, seed: int, **kwargs):
    op = OPS.build({"type": name, **kwargs})
    params = op.sample(numpy_rng(seed), *image.shape[-2:])
    return op, params, *op.apply(image, params)


# ---- the mask contract ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", STRUCTURED)
@pytest.mark.parametrize("seed", SEEDS)
def test_mask_is_pixel_exact(name, seed, astronaut):
    op, params, out, mask = run(name, astronaut, seed)
    assert op.structured
    assert out.shape == astronaut.shape and out.dtype == torch.float32
    assert mask.shape == (1, 1, 128, 128) and mask.dtype == torch.bool
    outside = ~mask.expand_as(out)
    assert torch.equal(out[outside], astronaut[outside])  # bit for bit
    n = int(mask.sum())
    assert 0 < n < 0.5 * mask.numel()  # default ranges: visible damage, never the whole photo
    changed = (out != astronaut).any(dim=1, keepdim=True)
    assert int((changed & mask).sum()) >= 0.75 * n  # the mask marks real damage
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", STRUCTURED)
def test_deterministic_and_replayable(name, astronaut):
    op, params, out, mask = run(name, astronaut, 7)
    assert op.sample(numpy_rng(7), 128, 128) == params
    params2 = json.loads(json.dumps(params))  # records go through JSON
    out2, mask2 = OPS.build(op.config()).apply(astronaut.clone(), params2)
    assert torch.equal(out, out2) and torch.equal(mask, mask2)
    _, _, out3, _ = run(name, astronaut, 8)
    assert not torch.equal(out, out3)


@pytest.mark.parametrize("name", STRUCTURED)
def test_input_not_modified_and_other_sizes(name):
    x = torch.rand(1, 3, 37, 81, generator=torch.Generator().manual_seed(1))
    x0 = x.clone()
    _, _, out, mask = run(name, x, 3)
    assert torch.equal(x, x0)
    assert out.shape == x.shape and mask.shape == (1, 1, 37, 81)
    assert torch.equal(out[~mask.expand_as(out)], x[~mask.expand_as(out)])


def test_dark_marks_darken_and_bright_marks_lighten(astronaut):
    # multiply with a colour <= 1 never brightens; screen / lighten / addition never darken (up to rounding)
    for seed in SEEDS:
        _, p, out, m = run("scratches", astronaut, seed, dark_prob=1.0)
        assert all(p["dark"]) and m.any() and (out <= astronaut + 1e-6).all()
        _, p, out, m = run("scratches", astronaut, seed, dark_prob=0.0)
        assert not any(p["dark"]) and m.any() and (out >= astronaut - 1e-6).all()
        _, p, out, m = run("cracks", astronaut, seed, dark_prob=0.0, shadow_prob=0.0)
        assert m.any() and (out >= astronaut - 1e-6).all()
        _, p, out, m = run("cracks", astronaut, seed, dark_prob=1.0)
        assert m.any() and (out <= astronaut + 1e-6).all()


def test_torn_fills_with_light_background_touching_the_border(astronaut):
    for seed in SEEDS:
        _, p, out, m = run("torn", astronaut, seed, kinds=["corner", "edge"], weights=[1, 1], texture=[0.02, 0.02])
        mm = m[0, 0]
        assert mm[0].any() or mm[-1].any() or mm[:, 0].any() or mm[:, -1].any()
        # fully covered pixels show the background: its colour plus a texture of amplitude 0.02
        interior = torch.from_numpy(ndimage.binary_erosion(mm.numpy(), iterations=2))
        if interior.any():
            colour = torch.tensor(p["colour"]).view(3, 1)
            px = out[0][:, interior]
            assert (px - colour).abs().max() < 0.02 * 5


def test_dust_count_scales_with_area():
    op = OPS.build("dust")
    small = [op.sample(numpy_rng(s), 128, 128)["count"] for s in range(20)]
    big = [op.sample(numpy_rng(s), 256, 256)["count"] for s in range(20)]
    assert np.mean(big) == pytest.approx(4 * np.mean(small), rel=0.05)


def test_bad_config_fails_loudly():
    with pytest.raises(ValueError, match="kinds"):
        OPS.build({"type": "torn", "kinds": ["corner", "hexagon"], "weights": [1, 1]})
    with pytest.raises(KeyError, match="valid names"):
        OPS.build({"type": "scratchez"})


# ---- rasterisation and compositing against closed forms ---------------------------------------------------
def test_canvas_polygon_coverage_is_area():
    # rectangle [10.25, 20.75] x [5, 15]: coverage = overlap area per pixel (+ OpenCV's 1/s boundary pixel)
    c = Canvas(32, 32, s=4)
    c.polygon(np.array([[10.25, 5.0], [20.75, 5.0], [20.75, 15.0], [10.25, 15.0]]))
    a = c.coverage()
    xs, ys = np.arange(32), np.arange(32)
    ov_x = np.clip(np.minimum(xs + 1, 20.75) - np.maximum(xs, 10.25), 0, 1)
    ov_y = np.clip(np.minimum(ys + 1, 15.0) - np.maximum(ys, 5.0), 0, 1)
    expected = ov_y[:, None] * ov_x[None, :]
    assert np.abs(a - expected).max() <= 0.25 + 1 / 255
    assert a.sum() == pytest.approx(expected.sum(), rel=0.06)


@pytest.mark.parametrize("width", [0.5, 1.0, 2.0, 3.0])
def test_canvas_line_width(width):
    c = Canvas(64, 64, s=4)
    c.polyline(np.array([[-5.0, 30.3], [70.0, 30.3]]), width, 1.0)
    cols = c.coverage().sum(axis=0)
    assert np.allclose(cols, cols[0]) and abs(cols[0] - width) <= 0.25 + 0.02  # + 1/s and uint8 rounding
    rows = np.flatnonzero(c.coverage()[:, 10])
    assert rows.min() <= 30.3 <= rows.max() + 1


def test_composite_matches_dense_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 20, 30, generator=g)
    alpha = np.zeros((20, 30), np.float32)
    alpha[5:9, 3:25] = np.random.default_rng(0).uniform(0.1, 1.0, (4, 22))
    colour = [0.9, 0.8, 0.7]
    out, mask = composite(x, alpha, colour, "screen")
    xn, a = x[0].numpy(), alpha[None]
    b = np.asarray(colour, np.float32)[:, None, None]
    ref = np.where(a > 0, xn * (1 - a) + (1 - (1 - xn) * (1 - b)) * a, xn)
    assert np.allclose(out[0].numpy(), ref, atol=1e-6)
    assert torch.equal(mask[0, 0], torch.from_numpy(alpha > 0))
    assert torch.equal(out[0][:, alpha == 0], x[0][:, alpha == 0])


def test_geometry_helpers():
    p = [(0, 0), (1, 3), (4, 3), (5, 0)]
    pts = cubic_bezier(*p, 3)
    assert np.allclose(pts[0], p[0]) and np.allclose(pts[-1], p[-1])
    assert np.allclose(pts[1], 0.125 * np.array(p[0]) + 0.375 * np.array(p[1]) + 0.375 * np.array(p[2])
                       + 0.125 * np.array(p[3]))
    j = jagged_path(numpy_rng(0), (0, 0), (100, 0), 0.1, levels=5)
    assert j.shape == (33, 2) and np.allclose(j[0], (0, 0)) and np.allclose(j[-1], (100, 0))
    assert np.allclose(j[:, 0], np.linspace(0, 100, 33))  # displaced only along the normal


# ---- presets ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["paper", "light", "heavy"])
def test_presets_load_and_run(preset):
    synth = Synthesizer(preset)
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    res = synth(x, [0, 1])
    assert res.image.shape == x.shape and res.mask.shape == (2, 1, 96, 96)
    assert res.image.min() >= 0 and res.image.max() <= 1
    again = Synthesizer.replay_batch(x, json.loads(json.dumps(res.records)))
    assert torch.equal(again.image, res.image) and torch.equal(again.mask, res.mask)


def test_paper_preset_contains_the_unstructured_stage_exactly():
    paper = load_config("paper", "presets")
    unstructured = load_config("unstructured", "presets")
    n = len(unstructured["stages"])
    assert paper["stages"][-n:] == unstructured["stages"]  # same groups, ops, probabilities, order
    names = [s["name"] for s in paper["stages"]]
    assert names.index("structured") < names.index("unstructured")  # defects get blurred / JPEG'd later
    structured = {g["name"]: g["p"] for g in paper["stages"][names.index("structured")]["groups"]}
    assert structured == {"scratches": 0.7, "cracks": 0.3, "dust": 0.6, "torn": 0.15}


def test_preset_files_are_plain_yaml():
    for name in ("paper", "light", "heavy"):
        spec = load_config(name, "presets")
        assert spec["name"] == name and yaml.safe_dump(spec)


def test_heavy_covers_more_than_light():
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    cover = {p: np.mean([float(Synthesizer(p)(x, s).mask.mean()) for s in range(20)]) for p in ("light", "heavy")}
    assert cover["heavy"] > 2 * cover["light"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", STRUCTURED)
def test_same_damage_on_cuda(name, astronaut):
    op, params, out, mask = run(name, astronaut, 2)
    out_gpu, mask_gpu = op.apply(astronaut.cuda(), params)
    assert torch.equal(mask_gpu.cpu(), mask) and torch.allclose(out_gpu.cpu(), out, atol=1e-6)
