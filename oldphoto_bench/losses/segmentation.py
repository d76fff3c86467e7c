"""Losses of the scratch detector: binary cross-entropy, focal loss, soft Dice, and their combination.

Shapes: ``logits`` and ``target`` are ``(N, 1, H, W)`` (any matching shapes with a leading batch dimension
work); ``target`` is the scratch mask in [0, 1] (1 = scratch), usually binary. The released detector's
training code was not published, so the combination follows the issue: BCE or focal, plus Dice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Lin et al. 2017 ("Focal loss for dense object detection"), the values of their best RetinaNet.
FOCAL_GAMMA = 2.0
FOCAL_ALPHA = 0.25
REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise KeyError(f"unknown reduction {reduction!r}; valid names: {', '.join(REDUCTIONS)}")


def _check(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if logits.shape != target.shape:
        raise ValueError(f"logits and target shapes differ: {tuple(logits.shape)} vs {tuple(target.shape)}")
    return target.to(logits.dtype)


def _pos_weight_factor(target: torch.Tensor, pos_weight: float | torch.Tensor | None) -> torch.Tensor | None:
    """``w_t = pos_weight * t + (1 - t)``: for binary ``t``, BCEWithLogits' ``pos_weight`` as a per-element factor."""
    if pos_weight is None:
        return None
    return torch.as_tensor(pos_weight, dtype=target.dtype, device=target.device) * target + (1.0 - target)


def bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float | torch.Tensor | None = None,
             reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy on logits, ``-[w t log p + (1 - t) log(1 - p)]`` with ``p = sigmoid(logits)``.

    ``w = pos_weight`` (default 1) scales the positive (scratch) term, as ``BCEWithLogitsLoss(pos_weight)``;
    it fights the imbalance of thin scratches (a few percent of the pixels). Computed stably from logits.
    """
    target = _check(logits, target)
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return _reduce(F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none"),
                   reduction)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA,
               alpha: float | None = FOCAL_ALPHA, pos_weight: float | torch.Tensor | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Focal loss (Lin et al. 2017): ``FL = -alpha_t (1 - p_t)^gamma log(p_t)``.

    ``p_t = p t + (1 - p)(1 - t)`` (probability given to the true class), ``alpha_t = alpha t + (1 - alpha)(1 -
    t)`` (``alpha=None``: no class weighting), ``-log p_t`` is the BCE term (with soft targets: BCE). With
    ``gamma = 0`` this is the alpha-weighted BCE. ``pos_weight`` multiplies by ``pos_weight * t + (1 - t)``
    (for binary targets the same as :func:`bce_loss`'s). ``1 - p_t`` is built from ``sigmoid(-logits)`` so it
    does not cancel to 0 for confident predictions.
    """
    target = _check(logits, target)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    one_minus_pt = target * torch.sigmoid(-logits) + (1.0 - target) * torch.sigmoid(logits)
    loss = ce if gamma == 0 else one_minus_pt.pow(gamma) * ce
    if alpha is not None:
        loss = (alpha * target + (1.0 - alpha) * (1.0 - target)) * loss
    w = _pos_weight_factor(target, pos_weight)
    return _reduce(loss if w is None else w * loss, reduction)


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1.0, per_image: bool = True,
                   reduction: str = "mean") -> torch.Tensor:
    """Soft Dice loss on probabilities: ``1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s)``.

    Sums run over each image (``per_image=True``, then ``reduction`` over the batch) or over the whole
    batch (``per_image=False``, a scalar). ``s = smooth > 0`` makes a scratch-free image with ``p = 0`` score 0
    loss and keeps gradients finite. 0 when ``p == t`` for a binary ``t``; in [0, 1] for ``p, t`` in [0, 1].
    """
    if prob.shape != target.shape:
        raise ValueError(f"prob and target shapes differ: {tuple(prob.shape)} vs {tuple(target.shape)}")
    target = target.to(prob.dtype)
    dims = tuple(range(1, prob.dim())) if per_image else tuple(range(prob.dim()))
    inter = (prob * target).sum(dim=dims)
    denom = prob.sum(dim=dims) + target.sum(dim=dims)
    loss = 1.0 - (2.0 * inter + smooth) / (denom + smooth)
    return loss if not per_image else _reduce(loss, reduction)


class ScratchLoss(nn.Module):
    """``L = L_pix(logits, t) + dice_weight * Dice(sigmoid(logits), t)``, ``L_pix`` = focal (default) or BCE.

    ``bce_or_focal``: ``"focal"`` (gamma ``focal_gamma``, alpha ``focal_alpha``; Lin et al. 2017 defaults) or
    ``"bce"``; ``pos_weight`` up-weights scratch pixels in either. Dice is per image with smoothing ``smooth``.
    ``forward`` returns the scalar total; :meth:`terms` also returns each part (for logging).
    """

    def __init__(self, bce_or_focal: str = "focal", dice_weight: float = 1.0, pos_weight: float | None = None,
                 focal_gamma: float = FOCAL_GAMMA, focal_alpha: float | None = FOCAL_ALPHA, smooth: float = 1.0):
        super().__init__()
        if bce_or_focal not in ("bce", "focal"):
            raise KeyError(f"unknown pixel loss {bce_or_focal!r}; valid names: bce, focal")
        self.pixel = bce_or_focal
        self.dice_weight = float(dice_weight)
        self.pos_weight = pos_weight
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.smooth = smooth

    def terms(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"bce" or "focal": ..., "dice": ..., "total": ...}`` (scalars; "dice" is unweighted)."""
        if self.pixel == "focal":
            pix = focal_loss(logits, target, self.focal_gamma, self.focal_alpha, self.pos_weight)
        else:
            pix = bce_loss(logits, target, self.pos_weight)
        out = {self.pixel: pix}
        total = pix
        if self.dice_weight:
            dice = soft_dice_loss(torch.sigmoid(logits), target, self.smooth)
            out["dice"] = dice
            total = total + self.dice_weight * dice
        out["total"] = total
        return out

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.terms(logits, target)["total"]
