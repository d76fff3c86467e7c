"""One optimisation step of the face enhancer (generator, then conditional multiscale discriminator).

The released system never published the face network's training code. Losses here follow the issue and
pix2pixHD / SPADE conventions, with a conditional discriminator ``D(cat(degraded, face))`` (6 channels,
:class:`oldphoto_bench.models.MultiscalePatchDiscriminator`)::

    L_G = w_l1 * |G(x) - y|_1 + w_gan * LSGAN(D(x, G(x)), 1) + FM(D(x, G(x)), D(x, y)) [+ w_vgg * VGG(G(x), y)]
    L_D = 0.5 * (LSGAN(D(x, y), 1) + LSGAN(D(x, G(x)), 0))

The feature-matching weight is ``w_fm`` (pix2pixHD's 10); the VGG term is used only when a
:class:`~oldphoto_bench.losses.VGGPerceptual` is passed (weights present locally). Order as pix2pixHD: the
generator steps first (discriminator frozen), then the discriminator on the detached output.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..losses import (
    FEATURE_MATCHING_WEIGHT,
    feature_matching_loss,
    l1_reconstruction,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)

# l1 = 10: our choice (no released value), on the scale of the feature-matching and VGG weights, which are
# pix2pixHD's / SPADE's lambda_feat = lambda_vgg = 10.
FACE_LOSS_WEIGHTS: dict[str, float] = {"l1": 10.0, "gan": 1.0, "fm": FEATURE_MATCHING_WEIGHT, "vgg": 10.0}


def face_loss_weights(weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """:data:`FACE_LOSS_WEIGHTS` updated with ``weights``; unknown keys fail loudly."""
    out = dict(FACE_LOSS_WEIGHTS)
    for k, v in (weights or {}).items():
        if k not in out:
            raise KeyError(f"unknown face loss weight {k!r}; valid names: {', '.join(sorted(out))}")
        out[k] = float(v)
    return out


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def face_training_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
                       opt_d: torch.optim.Optimizer, degraded: torch.Tensor, clean: torch.Tensor,
                       weights: Mapping[str, float] | None = None, vgg: nn.Module | None = None
                       ) -> dict[str, float]:
    """One generator and one discriminator update on a batch of aligned faces.

    degraded, clean: ``(N, 3, S, S)`` in [0, 1] (S = the generator's size). Returns the losses as floats:
    ``g_total, g_l1, g_gan, g_fm, [g_vgg,] d_total`` (weighted terms, as summed).
    """
    w = face_loss_weights(weights)
    generator.train()
    discriminator.train()

    # Generator: the discriminator's parameters are frozen so no gradients accumulate on them.
    fake = generator(degraded)
    _set_requires_grad(discriminator, False)
    try:
        feats = discriminator(torch.cat([torch.cat([degraded, clean], 1), torch.cat([degraded, fake], 1)]))
    finally:
        _set_requires_grad(discriminator, True)
    n = degraded.shape[0]
    real_f = [[f[:n].detach() for f in scale] for scale in feats]
    fake_f = [[f[n:] for f in scale] for scale in feats]
    terms = {
        "g_l1": w["l1"] * l1_reconstruction(fake, clean),
        "g_gan": w["gan"] * lsgan_generator_loss(fake_f),
        "g_fm": feature_matching_loss(fake_f, real_f, w["fm"]),
    }
    if vgg is not None:
        terms["g_vgg"] = w["vgg"] * vgg(fake, clean)
    g_total = sum(terms.values())
    opt_g.zero_grad(set_to_none=True)
    g_total.backward()
    opt_g.step()

    # Discriminator on the detached output; real and fake in one batch (per-sample layers: same as two calls).
    feats = discriminator(torch.cat([torch.cat([degraded, clean], 1), torch.cat([degraded, fake.detach()], 1)]))
    d_total = lsgan_discriminator_loss([[f[:n] for f in s] for s in feats], [[f[n:] for f in s] for s in feats])
    opt_d.zero_grad(set_to_none=True)
    d_total.backward()
    opt_d.step()

    out = {"g_total": float(g_total.detach())}
    out.update({k: float(v.detach()) for k, v in terms.items()})
    out["d_total"] = float(d_total.detach())
    return out


def build_face_discriminator(base_channels: int = 64, num_scales: int = 2, n_layers: int = 3,
                             init_seed: int = 0) -> nn.Module:
    """The conditional discriminator: a :class:`MultiscalePatchDiscriminator` on 6 channels (degraded + face);
    widths as pix2pixHD / the released code (64, 3 layers, 2 scales)."""
    from ..models import MultiscalePatchDiscriminator

    return MultiscalePatchDiscriminator(in_channels=6, base_channels=base_channels, n_layers=n_layers,
                                        num_scales=num_scales, init_seed=init_seed)
