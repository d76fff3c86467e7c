"""Shapes, seeding and a tiny overfit for the VAE, the mapping network and the discriminators."""

from __future__ import annotations

import pytest
import torch

from oldphoto_bench.losses import kl_divergence, l1_reconstruction
from oldphoto_bench.models import (
    NETWORKS,
    VAE,
    LatentDiscriminator,
    MappingNetwork,
    MultiscalePatchDiscriminator,
    ResidualBlock,
    pad_to_multiple,
    unpad,
)
from oldphoto_bench.seeding import torch_generator

TINY_VAE = dict(base_channels=8, max_channels=16, latent_channels=8, n_res_blocks=1)


def images(n=2, h=32, w=24, seed=0):
    return torch.rand(n, 3, h, w, generator=torch_generator(seed))


def test_vae_shapes_and_range():
    vae = VAE(**TINY_VAE)
    out = vae(images(), generator=torch_generator(1))
    assert out.recon.shape == (2, 3, 32, 24)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, 8, 8, 6)
    assert out.recon.min() >= 0 and out.recon.max() <= 1
    assert VAE().encode(images(1, 16, 16))[0].shape == (1, 64, 4, 4)  # released defaults: 64 ch at H/4


def test_vae_rejects_sizes_that_are_not_multiples_of_4():
    with pytest.raises(ValueError, match="pad_to_multiple"):
        VAE(**TINY_VAE)(images(1, 30, 24))


def test_pad_to_multiple_and_unpad_round_trip():
    x = images(1, 30, 21)
    padded, pad = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (32, 24) and pad == (2, 3)
    assert torch.equal(padded[..., :30, :21], x)
    assert torch.equal(unpad(padded, pad), x)
    latent = torch.zeros(1, 8, 8, 6)
    assert unpad(latent, pad, scale=4).shape[-2:] == (8, 6)  # the 2 and 3 padded rows/cols are in the last cells
    tiny, pad = pad_to_multiple(images(1, 2, 2), 8)  # too small to reflect: replicate
    assert tiny.shape[-2:] == (8, 8)
    same, pad = pad_to_multiple(x[..., :28, :20], 4)
    assert pad == (0, 0) and same.shape[-2:] == (28, 20)


def test_reparameterisation_uses_the_given_generator():
    vae = VAE(**TINY_VAE)
    x = images()
    a = vae(x, generator=torch_generator(5))
    b = vae(x, generator=torch_generator(5))
    c = vae(x, generator=torch_generator(6))
    assert torch.equal(a.z, b.z) and not torch.equal(a.z, c.z)
    eps = torch.randn(a.mu.shape, generator=torch_generator(5))
    torch.testing.assert_close(a.z, a.mu + torch.exp(0.5 * a.logvar) * eps)
    det = vae(x, sample=False)
    assert torch.equal(det.z, det.mu)


def test_init_seed_gives_same_bytes():
    a, b, c = VAE(**TINY_VAE, init_seed=3), VAE(**TINY_VAE, init_seed=3), VAE(**TINY_VAE, init_seed=4)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), k
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters(), strict=True))


def test_mapping_shapes_with_and_without_nonlocal():
    z = torch.randn(2, 8, 6, 5, generator=torch_generator(0))
    plain = MappingNetwork(latent_channels=8, widths=(8, 16), n_res_blocks=1)
    assert plain(z).shape == z.shape
    with pytest.raises(ValueError, match="no nonlocal block"):
        plain(z, torch.ones(2, 1, 6, 5, dtype=torch.bool))
    nl = MappingNetwork(latent_channels=8, widths=(8, 16), n_res_blocks=1, nonlocal_block=True,
                        nonlocal_inter_channels=4, nonlocal_res_blocks=1)
    assert nl.nonlocal_block.channels == 16  # at the widest width, after the up-channel convs
    valid = torch.rand(2, 1, 6, 5, generator=torch_generator(1)) > 0.2
    assert nl(z, valid).shape == z.shape
    default = MappingNetwork()
    convs = [m for m in default.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:3]] == [128, 256, 512] and convs[-1].out_channels == 64
    assert sum(isinstance(m, ResidualBlock) for m in default.modules()) == 6


def test_multiscale_discriminator_features():
    d = MultiscalePatchDiscriminator(base_channels=8, n_layers=3, num_scales=3)
    feats = d(images(2, 64, 64))
    assert len(feats) == 3 and all(len(s) == 5 for s in feats)  # n_layers + 2 stages
    assert [s[-1].shape[1] for s in feats] == [1, 1, 1]
    assert [s[0].shape[-1] for s in feats] == [33, 17, 9]  # 4x4 stride-2 pad-2 conv on 64, 32, 16
    assert feats[0][1].shape[1] == 16 and feats[0][3].shape[1] == 64


def test_latent_discriminator_features():
    d = LatentDiscriminator(in_channels=8, base_channels=8, n_layers=2)
    feats = d(torch.randn(3, 8, 16, 16, generator=torch_generator(0)))
    assert len(feats) == 1 and len(feats[0]) == 4
    assert feats[0][-1].shape[:2] == (3, 1)


def test_registry_builds_and_lists_names():
    vae = NETWORKS.build({"type": "vae", **TINY_VAE})
    assert isinstance(vae, VAE)
    with pytest.raises(KeyError, match="latent_patchgan"):
        NETWORKS.get("vea")


def smooth_batch(seed: int) -> torch.Tensor:
    """Two 16x16 images of colour ramps and a sinusoid: structure a tiny VAE can memorise."""
    g = torch_generator(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    out = []
    for _ in range(2):
        a = torch.rand(3, 3, generator=g)
        out.append(torch.stack([a[c, 0] * xx + a[c, 1] * yy + 0.3 * a[c, 2] * torch.sin(6 * xx + 3 * c)
                                for c in range(3)]).clamp(0, 1))
    return torch.stack(out)


def test_tiny_vae_overfits_one_batch():
    """L1 reconstruction falls below 1/4 of its initial value in 100 Adam steps (measured: about 1/10)."""
    x = smooth_batch(0)
    vae = VAE(**TINY_VAE, init_seed=0)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    gen = torch_generator(1)
    with torch.no_grad():
        initial = l1_reconstruction(vae(x, sample=False).recon, x).item()
    for _ in range(100):
        out = vae(x, generator=gen)
        loss = l1_reconstruction(out.recon, x) + 1e-4 * kl_divergence(out.mu, out.logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = l1_reconstruction(vae(x, sample=False).recon, x).item()
    assert final < initial / 4, (initial, final)
