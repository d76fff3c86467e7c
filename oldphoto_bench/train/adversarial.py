"""The two halves of an LSGAN update with a PatchGAN discriminator, shared by the stages.

Real and fake go through the discriminator in one batch (``cat([real, fake])``): its layers act per sample
(InstanceNorm, convolutions), so this equals two calls and costs one. The generator half runs the bare
discriminator with its parameters frozen (no gradients for it, and no DDP bookkeeping); the discriminator
half runs the DDP-wrapped one on detached fakes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss, lsgan_loss
from .ddp import unwrap

Features = list[list[torch.Tensor]]


def split_features(features: Features, n_first: int) -> tuple[Features, Features]:
    """Split every feature map of a ``cat([a, b])`` forward into the parts of ``a`` and of ``b``."""
    first = [[f[:n_first] for f in scale] for scale in features]
    second = [[f[n_first:] for f in scale] for scale in features]
    return first, second


def _frozen(disc: nn.Module) -> nn.Module:
    bare = unwrap(disc)
    for p in bare.parameters():
        p.requires_grad_(False)
    return bare


def _thaw(disc: nn.Module) -> None:
    for p in unwrap(disc).parameters():
        p.requires_grad_(True)


def generator_terms(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, fm_weight: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_GAN(D(fake), 1), fm_weight * FM(D(fake), D(real)))``; gradients reach ``fake`` only."""
    bare = _frozen(disc)
    try:
        real_f, fake_f = split_features(bare(torch.cat([real, fake])), real.shape[0])
    finally:
        _thaw(disc)
    gan = lsgan_generator_loss(fake_f)
    fm = feature_matching_loss(fake_f, real_f, fm_weight) if fm_weight else gan.new_zeros(())
    return gan, fm


def discriminator_term(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``0.5 * (L(D(real), 1) + L(D(fake), 0))`` on detached inputs (call with the wrapped ``disc``)."""
    real_f, fake_f = split_features(disc(torch.cat([real.detach(), fake.detach()])), real.shape[0])
    return lsgan_discriminator_loss(real_f, fake_f)


def confusion_terms(disc: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Encoder side of the latent adversarial loss: ``0.5 * (L(D(a), 0) + L(D(b), 1))``.

    The latent discriminator labels ``a`` (real old photos R) 1 and ``b`` (synthetic X) 0; the encoder is
    rewarded for the swapped labels, so both domains move towards each other in the shared latent space.
    """
    bare = _frozen(disc)
    try:
        a_f, b_f = split_features(bare(torch.cat([a, b])), a.shape[0])
    finally:
        _thaw(disc)
    return 0.5 * (lsgan_loss(a_f, False) + lsgan_loss(b_f, True))
