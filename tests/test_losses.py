"""Losses against closed forms, torch.distributions and hand-computed references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from oldphoto_bench.losses import (
    LATENT_L1_WEIGHT,
    VGGPerceptual,
    feature_matching_loss,
    find_vgg_weights,
    kl_divergence,
    l1_reconstruction,
    latent_l1,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    lsgan_loss,
    maybe_vgg_perceptual,
)
from oldphoto_bench.seeding import torch_generator


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch_generator(seed)) * scale


def test_kl_matches_torch_distributions():
    mu, logvar = randn(4, 8, 5, 5, seed=1), randn(4, 8, 5, 5, seed=2)
    ref = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).flatten(1).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), ref)


def test_kl_nonnegative_and_zero_at_prior():
    for seed in range(5):
        mu, logvar = randn(3, 4, 6, 6, seed=seed, scale=1e-3), randn(3, 4, 6, 6, seed=seed + 10, scale=1e-4)
        assert kl_divergence(mu, logvar) >= 0
        assert kl_divergence(torch.zeros_like(mu), logvar) >= 0
    z = torch.zeros(2, 8, 4, 4)
    assert kl_divergence(z, z).item() == 0.0
    assert kl_divergence(z + 0.5, z) > 0 and kl_divergence(z, z + 0.5) > 0 and kl_divergence(z, z - 0.5) > 0


def test_kl_is_a_batch_mean():
    mu, logvar = randn(2, 3, 4, 4, seed=3), randn(2, 3, 4, 4, seed=4)
    torch.testing.assert_close(kl_divergence(torch.cat([mu, mu]), torch.cat([logvar, logvar])),
                               kl_divergence(mu, logvar))


def test_l1_and_latent_l1():
    a, b = randn(2, 3, 4, 4, seed=5), randn(2, 3, 4, 4, seed=6)
    expected = np.abs(a.numpy() - b.numpy()).mean()
    assert l1_reconstruction(a, b).item() == pytest.approx(expected, rel=1e-6)
    assert LATENT_L1_WEIGHT == 60.0
    target = b.clone().requires_grad_(True)
    pred = a.clone().requires_grad_(True)
    loss = latent_l1(pred, target)
    assert loss.item() == pytest.approx(60 * expected, rel=1e-6)
    loss.backward()
    assert target.grad is None and pred.grad is not None  # the clean latent is a fixed target


def fake_multiscale(values_per_scale, stages=4):
    """Discriminator-shaped outputs: one list per scale; every stage a constant tensor."""
    return [[torch.full((2, 1, 3, 3), float(v)) for _ in range(stages)] for v in values_per_scale]


def test_lsgan_closed_forms():
    real, fake = fake_multiscale([0.8, 1.0]), fake_multiscale([0.1, -0.2])
    assert lsgan_loss(real, True).item() == pytest.approx(0.2**2 + 0.0)
    assert lsgan_loss(fake, False).item() == pytest.approx(0.1**2 + 0.2**2)
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.04 + 0.01 + 0.04))
    assert lsgan_generator_loss(fake).item() == pytest.approx(0.9**2 + 1.2**2)
    assert lsgan_loss(torch.ones(2, 1, 4, 4), True).item() == 0.0  # a bare prediction tensor


def test_feature_matching_pix2pixhd_weighting():
    # 2 scales x 4 stages (n_layers = 2): the 3 non-final stages count, each |diff| = 0.5 at scale 0, 1 at 1
    fake = fake_multiscale([0.5, 1.0])
    real = fake_multiscale([0.0, 0.0])
    real[0][-1].fill_(99.0)  # the final prediction stage is not matched
    expected = 10.0 * (0.5 * (4 / 3) * (3 * 0.5) + 0.5 * (4 / 3) * (3 * 1.0))
    assert feature_matching_loss(fake, real).item() == pytest.approx(expected)
    assert feature_matching_loss(fake, fake).item() == 0.0
    with pytest.raises(ValueError, match="scale counts"):
        feature_matching_loss(fake, real[:1])


def test_vgg_perceptual_missing_weights_raises_clearly(tmp_path):
    assert find_vgg_weights(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="never downloads") as err:
        VGGPerceptual(tmp_path)
    assert str(tmp_path) in str(err.value)
    loss, message = maybe_vgg_perceptual(tmp_path)
    assert loss is None and "not used" in message and str(tmp_path) in message


@pytest.fixture
def fake_vgg_weights(tmp_path):
    """A VGG19 state dict of the right shapes (features only), random small weights from a seed."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg19(weights=None).state_dict().items() if k.startswith("features.")}
    g = torch_generator(0)
    state = {k: torch.randn(s, generator=g) * (0.05 if k.endswith("weight") else 0.01) for k, s in shapes.items()}
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path, state


def test_vgg_perceptual_matches_hand_computed_relu_features(fake_vgg_weights):
    path, state = fake_vgg_weights
    assert find_vgg_weights(path.parent) == path
    loss_fn = VGGPerceptual(path)
    assert not any(p.requires_grad for p in loss_fn.parameters())
    x = torch.rand(1, 3, 32, 32, generator=torch_generator(1))
    y = torch.rand(1, 3, 32, 32, generator=torch_generator(2))
    # reference: run VGG19's "E" layer list by hand, take relu1_1, relu2_1, ..., relu5_1
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
    relu_taps = {1: 1 / 32, 3: 1 / 16, 5: 1 / 8, 9: 1 / 4, 13: 1.0}  # conv number (1-based) -> weight

    def taps(img):
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        h, idx, conv_no, out = (img - mean) / std, 0, 0, []
        for item in cfg:
            if item == "M":
                h = torch.nn.functional.max_pool2d(h, 2)
                idx += 1
                continue
            conv_no += 1
            h = torch.relu(torch.nn.functional.conv2d(h, state[f"features.{idx}.weight"],
                                                      state[f"features.{idx}.bias"], padding=1))
            idx += 2
            if conv_no in relu_taps:
                out.append(h)
            if conv_no == 13:
                return out

    ref = sum(w * (a - b).abs().mean() for w, a, b in zip(relu_taps.values(), taps(x), taps(y), strict=True))
    torch.testing.assert_close(loss_fn(x, y), ref, rtol=1e-4, atol=1e-7)
    assert loss_fn(x, x).item() == 0.0
    used, message = maybe_vgg_perceptual(path)
    assert used is not None and "used" in message and str(path) in message


def test_ssim_loss_is_one_minus_scikit_image_ssim_and_has_gradients():
    from skimage.metrics import structural_similarity

    from oldphoto_bench.losses import ssim_loss

    y = randn(2, 3, 24, 20, seed=3).sigmoid()
    x = (y + randn(2, 3, 24, 20, seed=4, scale=0.1)).clamp(0, 1).requires_grad_(True)
    ref = np.mean([structural_similarity(x[i].detach().permute(1, 2, 0).double().numpy(),
                                         y[i].permute(1, 2, 0).double().numpy(), gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1.0, channel_axis=2)
                   for i in range(2)])
    loss = ssim_loss(x, y)
    assert loss.item() == pytest.approx(1.0 - ref, abs=1e-6)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert ssim_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
