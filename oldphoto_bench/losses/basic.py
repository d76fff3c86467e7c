"""Closed-form and pixel losses: KL to the standard normal, L1 reconstruction, latent L1 of the mapping."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Paper (Wan et al. 2020, Eq. 6): the latent L1 term of the mapping loss is weighted by lambda_1 = 60.
LATENT_L1_WEIGHT = 60.0


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ), summed over latent dimensions and averaged over the batch.

    ``mu``, ``logvar``: ``(N, ...)``. Per element ``0.5 * (mu^2 + exp(logvar) - 1 - logvar)``, written with
    ``expm1`` so that ``exp(lv) - 1 - lv`` (>= 0 for every lv) does not round below zero. Returns a scalar
    >= 0, exactly 0 when ``mu == 0`` and ``logvar == 0``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar shapes differ: {tuple(mu.shape)} vs {tuple(logvar.shape)}")
    per_element = 0.5 * (mu.square() + (torch.expm1(logvar) - logvar).clamp_min(0.0))
    return per_element.flatten(1).sum(dim=1).mean()


def l1_reconstruction(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error ``mean |recon - target|`` over all elements (images in [0, 1])."""
    return F.l1_loss(recon, target)


def latent_l1(mapped: torch.Tensor, target: torch.Tensor, weight: float = LATENT_L1_WEIGHT) -> torch.Tensor:
    """``weight * mean |T(z_x) - z_y|``: the mapping's latent regression term (paper: weight 60).

    ``target`` (VAE_B's latent of the clean photo) is detached: VAE_B is frozen while the mapping trains.
    """
    return weight * F.l1_loss(mapped, target.detach())


def gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |dx pred - dx target| + mean |dy pred - dy target|`` for ``(N, C, H, W)`` images, with ``dx``,
    ``dy`` the differences of horizontally / vertically adjacent pixels (edges that an L1 regression smooths)."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(pred), dx(target)) + F.l1_loss(dy(pred), dy(target))


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - mean SSIM(pred, target)`` over the batch (Wang et al. 2004, 11-tap Gaussian window, sigma 1.5,
    data range 1: the benchmark's SSIM), differentiable. Images ``(N, C, H, W)`` in [0, 1], H, W >= 11.

    Zhao et al. (2017, "Loss Functions for Image Restoration with Neural Networks") found L1 + (MS-)SSIM
    training better than L1 alone on every metric for denoising and demosaicking.
    """
    from ..metrics.fidelity import ssim

    return 1.0 - ssim(pred, target).mean().to(pred.dtype)
