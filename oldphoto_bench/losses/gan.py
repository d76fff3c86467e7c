"""LSGAN adversarial losses and discriminator feature matching over multiscale discriminator outputs.

Discriminator outputs are ``list[list[Tensor]]`` (see :mod:`oldphoto_bench.models.discriminators`): one
list per scale of stage outputs, the last of which is the patch prediction. A bare tensor or a list of
tensors (one prediction per scale) is also accepted.

LSGAN (Mao et al. 2017) as in pix2pixHD: per scale ``mean (D(x) - target)^2``, summed over scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# pix2pixHD's lambda_feat, used unchanged by the released old-photo code.
FEATURE_MATCHING_WEIGHT = 10.0

Outputs = torch.Tensor | Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]]


def _predictions(outputs: Outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [o if isinstance(o, torch.Tensor) else o[-1] for o in outputs]


def lsgan_loss(outputs: Outputs, target_is_real: bool) -> torch.Tensor:
    """``sum over scales of mean (D - t)^2`` with ``t = 1`` for real and ``0`` for fake."""
    target = 1.0 if target_is_real else 0.0
    preds = _predictions(outputs)
    return sum(F.mse_loss(p, torch.full_like(p, target)) for p in preds)


def lsgan_discriminator_loss(real_outputs: Outputs, fake_outputs: Outputs) -> torch.Tensor:
    """``0.5 * (L(D(real), 1) + L(D(fake), 0))`` (pix2pixHD). Pass ``D(fake.detach())``."""
    return 0.5 * (lsgan_loss(real_outputs, True) + lsgan_loss(fake_outputs, False))


def lsgan_generator_loss(fake_outputs: Outputs) -> torch.Tensor:
    """``L(D(fake), 1)``: the generator wants its outputs scored as real."""
    return lsgan_loss(fake_outputs, True)


def feature_matching_loss(fake_features: Sequence[Sequence[torch.Tensor]],
                          real_features: Sequence[Sequence[torch.Tensor]],
                          weight: float = FEATURE_MATCHING_WEIGHT) -> torch.Tensor:
    """pix2pixHD discriminator feature matching.

    ``weight * sum_scales sum_layers (1 / num_scales) * (4 / (n_layers + 1)) * mean |F_fake - F_real|``
    over every stage except the final prediction, where ``n_layers + 2`` is the number of stages of a
    scale; real features are detached.
    """
    if len(fake_features) != len(real_features):
        raise ValueError(f"scale counts differ: {len(fake_features)} fake vs {len(real_features)} real")
    num_scales = len(fake_features)
    total = fake_features[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake_features, real_features, strict=True):
        n_layers = len(fake_scale) - 2
        layer_weight = 4.0 / (n_layers + 1)
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + layer_weight / num_scales * F.l1_loss(f, r.detach())
    return weight * total
