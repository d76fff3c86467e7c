"""The layer-by-layer runner against the modules' own forwards (the independent reference), for many band
sizes, odd image sizes, batches, every padding kind, and the partial nonlocal fusion (also against the dense
N x N reference)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from oldphoto_bench.models import (
    VAE,
    MappingNetwork,
    PartialNonLocal,
    dense_partial_nonlocal_reference,
    latent_valid_from_mask,
)
from oldphoto_bench.restore import LayerwiseRunner
from oldphoto_bench.seeding import torch_generator

# float32 summation order differs between a banded and a whole-tensor conv / norm: a few ulps per layer
TOL = 2e-5


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial weights everywhere (the nonlocal W and the residual gates start at 0 otherwise)."""
    g = torch_generator(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.5))
    return module.eval()


@pytest.mark.parametrize("band_elements", [1, 1 << 24])
def test_vae_and_mapping_match_module_forward(band_elements):
    g = torch_generator(0)
    vae = VAE(base_channels=8, max_channels=16, latent_channels=8, n_res_blocks=2, init_seed=1).eval()
    mapping = _randomise(
        MappingNetwork(
            8,
            (16, 24),
            n_res_blocks=1,
            nonlocal_block=True,
            nonlocal_inter_channels=8,
            nonlocal_res_blocks=1,
            nonlocal_query_chunk=7,
        ),
        2,
    )
    x = torch.rand(2, 3, 20, 28, generator=g)
    valid = latent_valid_from_mask((torch.rand(2, 1, 20, 28, generator=g) > 0.97).float(), 4)
    assert 0 < (~valid).sum() < valid.numel()
    runner = LayerwiseRunner(band_elements)
    x_before = x.clone()
    with torch.no_grad():
        mu = vae.encode(x)[0]
        mu2 = runner.encode(vae.encoder, x)
        z = mapping(mu, valid)
        z2 = runner.map(mapping, mu2, valid)
        y, y2 = vae.decode(z), runner.run(vae.decoder, z2)
    assert torch.equal(x, x_before), "the runner wrote into its input"
    for a, b in ((mu, mu2), (z, z2), (y, y2)):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, atol=TOL * max(1.0, a.abs().max().item()), rtol=0)
    assert runner.fallbacks == []


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv2d(3, 5, 3, padding=1),
        nn.Conv2d(3, 5, 4, stride=2, padding=1),
        nn.Conv2d(3, 5, 3, padding=2, padding_mode="reflect"),
        nn.Conv2d(3, 5, 3, padding=1, padding_mode="replicate", dilation=2),
        nn.Conv2d(3, 6, 5, stride=3, padding=(2, 1), groups=3),
        nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 4, 7)),
        nn.Sequential(nn.ReplicationPad2d((1, 2, 3, 0)), nn.Conv2d(3, 4, 3)),
        nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(3, 4, 3, stride=2)),
        nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1),
        nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=(0, 1)),
        nn.ConvTranspose2d(3, 4, 5, stride=3, padding=0),
        nn.Sequential(nn.InstanceNorm2d(3), nn.LeakyReLU(0.2), nn.InstanceNorm2d(3, affine=True), nn.Tanh()),
    ],
)
@pytest.mark.parametrize("band_elements", [1, 50, 1 << 24])
def test_layers_match_module_forward(layer, band_elements):
    layer = _randomise(layer, 3)
    x = torch.randn(2, 3, 17, 23, generator=torch_generator(4))
    runner = LayerwiseRunner(band_elements)
    with torch.no_grad():
        torch.testing.assert_close(runner.run(layer, x), layer(x), atol=1e-5, rtol=1e-5)
    assert runner.fallbacks == []


def test_instance_norm_statistics_merge_over_many_bands():
    # large offset, small spread: a one-pass float32 sum of squares (E x^2 - (E x)^2) would cancel
    # catastrophically (E x^2 = 1e4 carries ~1e-3 rounding, the variance is 1e-4)
    x = 100.0 + 0.01 * torch.randn(1, 2, 64, 33, generator=torch_generator(5))
    norm = nn.InstanceNorm2d(2)
    ref = (x.double() - x.double().mean(dim=(2, 3), keepdim=True)) / (
        x.double().var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5
    ).sqrt()
    out = LayerwiseRunner(band_elements=40).run(norm, x)
    # the float32 mean is off by up to half an ulp at 100 (3.8e-6), times 1/std = 100
    torch.testing.assert_close(out.double(), ref, atol=1e-3, rtol=0)


def test_nonlocal_fusion_matches_block_and_dense_reference():
    block = _randomise(PartialNonLocal(12, 6, n_res_blocks=1, query_chunk=5), 6)
    g = torch_generator(7)
    x = torch.randn(2, 12, 9, 11, generator=g)
    valid = torch.rand(2, 1, 9, 11, generator=g) > 0.3
    valid[1] = True  # an image with nothing to fill passes through
    with torch.no_grad():
        ref = block(x, valid)
        dense = block.res_blocks(dense_partial_nonlocal_reference(block, x, valid))
        for band in (1, 30, 1 << 20):
            out = LayerwiseRunner(band).nonlocal_block(block, x, valid)
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        out_dense = LayerwiseRunner(attention="dense").nonlocal_block(block, x, valid)
    torch.testing.assert_close(out_dense, dense, atol=1e-6, rtol=0)
    torch.testing.assert_close(dense, ref, atol=1e-5, rtol=1e-5)


def test_unknown_modules_fall_back_and_are_named():
    class Twice(nn.Module):
        def forward(self, x):
            return 2 * x

    runner = LayerwiseRunner()
    x = torch.rand(1, 1, 4, 4)
    assert torch.equal(runner.run(nn.Sequential(Twice(), nn.ReLU()), x), 2 * x)
    assert runner.fallbacks == ["Twice"]


def test_bad_arguments():
    with pytest.raises(KeyError, match="valid names: linear, dense"):
        LayerwiseRunner(attention="sparse")
    with pytest.raises(ValueError):
        LayerwiseRunner(band_elements=0)
