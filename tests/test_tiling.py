"""Tiled inference: exact against untiled runs where the receptive field fits the margin, seamless otherwise,
exact sizes for odd images, and tile-bounded inputs to the network."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from oldphoto_bench.models import ScratchUNet
from oldphoto_bench.restore import blend_weights, run_padded, run_tiled, tile_starts
from oldphoto_bench.seeding import torch_generator


def smooth_image(h: int, w: int, channels: int = 1) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = 0.5 + 0.3 * torch.sin(6 * xx + 2 * yy) * torch.cos(4 * yy)
    return img[None, None].repeat(1, channels, 1, 1)


def conv_stack(padding_mode: str, seed: int = 0, channels: int = 3) -> nn.Sequential:
    """Three 3x3 convs (receptive field radius 3) with random weights."""
    g = torch_generator(seed)
    layers = []
    for cin, cout in ((channels, 8), (8, 8), (8, 2)):
        conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.1)
        layers += [conv, nn.Tanh()]
    return nn.Sequential(*layers[:-1]).eval()


def bounded(fn, limit: int, calls: list):
    """``fn`` that asserts each input is at most ``limit`` on both sides and records input shapes."""

    def wrapped(x, *extras):
        assert x.shape[-2] <= limit and x.shape[-1] <= limit, f"tile input {tuple(x.shape)} exceeds {limit}"
        calls.append(tuple(x.shape))
        return fn(x, *extras)

    return wrapped


def calibrated_unet(depth: int, seed: int) -> ScratchUNet:
    """A small U-Net whose BatchNorm running statistics come from random inputs (so outputs are O(1))."""
    m = ScratchUNet(base_channels=8, depth=depth, init_seed=seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = None  # cumulative average over the calibration batches
    with torch.no_grad():
        m.train()
        m(torch.rand(4, 1, 64, 64, generator=torch_generator(seed)))
    return m.eval()


def receptive_radius(model: ScratchUNet, size: int = 192) -> int:
    """Largest distance from an output pixel to an input pixel that influences it (any phase mod 2**depth)."""
    radius = 0
    for phase in range(model.multiple):
        x = torch.zeros(1, 1, size, size, requires_grad=True)
        c = size // 2 + phase
        model(x)[0, 0, c, c].backward()
        idx = (x.grad[0, 0].abs() > 0).nonzero()
        radius = max(radius, int((idx - c).abs().max()))
    return radius


# --- layout and weights ---------------------------------------------------------------------------------

def test_tile_starts_cover_with_exact_overlap():
    assert tile_starts(100, 128, 32) == [0]
    assert tile_starts(128, 128, 32) == [0]
    # stride 96: 0 + 128 < 300 -> 96; 96 + 128 < 300 -> 192; 192 + 128 >= 300: done
    assert tile_starts(300, 128, 32) == [0, 96, 192]
    for length in (129, 257, 1000, 4001):
        s = tile_starts(length, 128, 32)
        assert s[0] == 0 and s[-1] + 128 >= length and s[-2] + 128 < length
        assert all(b - a == 96 for a, b in zip(s, s[1:], strict=False))
        assert length - s[-1] > 32  # the last tile is longer than the overlap


@pytest.mark.parametrize("length,tile,overlap,margin", [(300, 128, 32, 8), (1000, 256, 64, 16), (97, 32, 16, 0)])
def test_blend_weights_partition_of_unity_and_smooth(length, tile, overlap, margin):
    starts = tile_starts(length, tile, overlap)
    ws = blend_weights(length, starts, tile, overlap, margin)
    total = torch.zeros(length, dtype=torch.float64)
    for s, w in zip(starts, ws, strict=True):
        assert w.numel() == min(s + tile, length) - s
        assert float(w.min()) >= 0.0 and float(w.max()) <= 1.0 + 1e-7
        total[s:s + w.numel()] += w.double()
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), atol=1e-6)
    ramp = overlap - 2 * margin
    for k, w in enumerate(ws):
        if k > 0:
            assert float(w[:margin].abs().sum()) == 0.0  # shared start edge: margin ignored
        if k < len(starts) - 1:
            assert float(w[w.numel() - margin:].abs().sum()) == 0.0
        # sin^2 ramp over R pixels: the slope is at most pi / (2 R)
        assert float((w[1:] - w[:-1]).abs().max()) <= math.pi / (2 * ramp) + 1e-6


def test_invalid_layouts_fail_loudly():
    img = torch.rand(1, 1, 300, 300)
    with pytest.raises(ValueError, match="overlap"):
        run_tiled(lambda x: x, img, tile=64, overlap=48)  # overlap > tile / 2
    with pytest.raises(ValueError, match="margin"):
        run_tiled(lambda x: x, img, tile=64, overlap=16, margin=8)  # 2 * margin == overlap
    with pytest.raises(NotImplementedError):
        run_tiled(lambda x: x, img, tile=64, overlap=16, scale=2)
    with pytest.raises(ValueError, match="extras"):
        run_tiled(lambda x, m: x, img, tile=64, overlap=16, extras=(torch.rand(1, 1, 300, 299),))
    with pytest.raises(ValueError, match="scale 1"):
        run_tiled(lambda x: x[..., ::2, ::2], img, tile=64, overlap=16)
    with pytest.raises(ValueError, match="out_channels"):
        run_tiled(lambda x: x, img, tile=None, out_channels=3)


# --- exactness ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(257, 131), (64, 64), (1, 1), (5, 300)])
def test_identity_round_trip_exact_size(size):
    img = torch.rand(2, 3, *size, generator=torch_generator(1))
    calls: list = []
    out = run_tiled(bounded(lambda x: x, 64, calls), img, tile=64, overlap=16, multiple=4)
    assert out.shape == img.shape and out.dtype == torch.float32
    assert float((out - img).abs().max()) <= 1e-6
    assert all(c[-2] % 4 == 0 and c[-1] % 4 == 0 for c in calls)  # every call padded to the multiple
    assert torch.equal(run_padded(lambda x: x, img, multiple=16), img)


@pytest.mark.parametrize("padding_mode", ["reflect", "zeros"])
def test_conv_stack_tiled_equals_untiled_everywhere(padding_mode):
    """Receptive field radius 3 <= margin 4: every output pixel is computed from the same inputs as untiled
    (the image's own border is handled by the same reflection/zero padding in both), so the whole image
    matches to float rounding: max abs diff < 1e-5."""
    net = conv_stack(padding_mode)
    img = torch.rand(1, 3, 257, 131, generator=torch_generator(2))
    calls: list = []
    tiled = run_tiled(bounded(net, 64, calls), img, tile=64, overlap=16, multiple=4, margin=4)
    untiled = run_padded(net, img, multiple=4)
    assert tiled.shape == (1, 2, 257, 131)
    assert len(calls) == len(tile_starts(257, 64, 16)) * len(tile_starts(131, 64, 16)) > 1
    assert float((tiled - untiled).abs().max()) < 1e-5


def test_scratch_unet_tiled_equals_untiled_when_margin_covers_receptive_field():
    model = calibrated_unet(depth=2, seed=5)
    radius = receptive_radius(model)
    margin = 4 * math.ceil(radius / 4)
    overlap = 2 * margin + 8
    tile = 2 * overlap
    img = torch.rand(1, 1, 259, 197, generator=torch_generator(3))  # odd: the last tiles are padded
    calls: list = []
    fn = bounded(model.forward_any_size, tile, calls)
    tiled = run_tiled(fn, img, tile=tile, overlap=overlap, multiple=model.multiple, margin=margin)
    untiled = run_padded(model.forward_any_size, img, multiple=model.multiple)
    assert len(calls) > 1 and tiled.shape == (1, 1, 259, 197)
    assert float(untiled.abs().max()) > 0.05  # a non-trivial output
    assert float((tiled - untiled).abs().max()) < 1e-5


# --- seams ----------------------------------------------------------------------------------------------

def _column_jumps(out: torch.Tensor) -> torch.Tensor:
    return (out[..., 1:] - out[..., :-1]).abs().amax(dim=(0, 1, 2))  # max |d/dx| per column boundary


def test_no_seam_with_receptive_field_beyond_margin():
    """A depth-3 U-Net (receptive field ~77 px) tiled with margin 16: tiles differ from the untiled run near
    their edges, but the cross-fade keeps the horizontal and vertical gradients at tile borders no larger than
    the largest gradient of the untiled output (+10%), while hard-stitched tiles jump well above it."""
    model = calibrated_unet(depth=3, seed=3)
    img = smooth_image(300, 280)
    tile, overlap = 128, 64
    tiled = run_tiled(model.forward_any_size, img, tile=tile, overlap=overlap, multiple=8, margin=16)
    untiled = run_padded(model.forward_any_size, img, multiple=8)
    for out, ref in ((tiled, untiled), (tiled.transpose(-1, -2), untiled.transpose(-1, -2))):
        length = out.shape[-1]
        starts = tile_starts(length, tile, overlap)
        borders = [b for s in starts[1:] for b in range(s - 1, min(s + overlap, length - 1))]
        bound = 1.1 * float(_column_jumps(ref).max())
        assert float(_column_jumps(out)[borders].max()) <= bound
    # the same bound fails for non-overlapping tiles pasted side by side (so this test can fail)
    stitched = torch.zeros_like(untiled)
    with torch.no_grad():
        for y0 in range(0, 300, 64):
            for x0 in range(0, 280, 64):
                stitched[..., y0:y0 + 64, x0:x0 + 64] = model.forward_any_size(img[..., y0:y0 + 64, x0:x0 + 64])
    assert float(_column_jumps(stitched).max()) > 1.5 * float(_column_jumps(untiled).max())


def test_cross_fade_bounds_the_jump_of_inconsistent_tiles():
    """An ``fn`` that is not translation-equivariant at all (each tile becomes its mean): adjacent output
    columns differ by at most |c_k - c_{k+1}| * pi / (2 R), R = overlap - 2 margin, not by the jump itself."""
    img = torch.linspace(0, 1, 200).view(1, 1, 1, 200).repeat(1, 1, 40, 1)  # a horizontal ramp
    overlap, margin = 32, 4
    out = run_tiled(lambda x: x.mean().expand_as(x).clone(), img, tile=64, overlap=overlap, multiple=4,
                    margin=margin)
    starts = tile_starts(200, 64, overlap)
    means = [float(img[..., s:s + 64].mean()) for s in starts]
    jump = max(abs(a - b) for a, b in zip(means, means[1:], strict=False))
    assert jump > 0.1
    assert float(_column_jumps(out).max()) <= jump * math.pi / (2 * (overlap - 2 * margin)) + 1e-6
    assert float((out[..., 0, 0] - means[0]).abs()) < 1e-6  # far from any overlap: that tile's own value


# --- extras, batches, callbacks --------------------------------------------------------------------------

@pytest.mark.parametrize("mask_dtype", [torch.float32, torch.bool])
def test_extras_are_tiled_identically(mask_dtype):
    g = torch_generator(4)
    img = torch.rand(2, 3, 150, 97, generator=g)
    mask = torch.rand(2, 1, 150, 97, generator=g) > 0.7
    calls: list = []

    def fn(x, m):
        assert m.shape[-2:] == x.shape[-2:] and m.dtype == mask_dtype
        return x * (1 - m.float())

    out = run_tiled(bounded(fn, 48, calls), img, tile=48, overlap=16, extras=(mask.to(mask_dtype),))
    assert len(calls) > 1
    assert float((out - img * ~mask).abs().max()) <= 1e-6


def test_progress_callback_and_single_call_paths():
    img = torch.rand(1, 1, 100, 70)
    seen: list = []
    run_tiled(lambda x: x, img, tile=48, overlap=16, on_tile=lambda d, t: seen.append((d, t)))
    total = len(tile_starts(100, 48, 16)) * len(tile_starts(70, 48, 16))
    assert seen == [(i + 1, total) for i in range(total)]
    for tile in (None, 128):  # no tiling, or an image smaller than the tile: one padded call
        calls: list = []
        out = run_tiled(bounded(lambda x: 2 * x, 10**6, calls), img, tile=tile, multiple=16)
        assert calls == [(1, 1, 112, 80)] and torch.allclose(out, 2 * img)


def test_tile_and_overlap_rounded_to_the_multiple():
    calls: list = []
    run_tiled(bounded(lambda x: x, 96, calls), torch.rand(1, 1, 300, 300), tile=100, overlap=20, multiple=16)
    assert max(max(c[-2:]) for c in calls) == 96  # 100 -> 96
    # overlap 20 -> 32: stride 64, starts 0, 64, 128, 192, 256 per axis (unrounded stride 80 would give 4)
    assert tile_starts(300, 96, 32) == [0, 64, 128, 192, 256] and len(calls) == 25
