"""Losses of the latent translation: KL, L1, LSGAN, feature matching, latent L1, VGG perceptual; and of the
scratch detector: BCE, focal, soft Dice."""

from .basic import LATENT_L1_WEIGHT, gradient_l1, kl_divergence, l1_reconstruction, latent_l1, ssim_loss
from .gan import (
    FEATURE_MATCHING_WEIGHT,
    feature_matching_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    lsgan_loss,
)
from .perceptual import (
    VGG19_FILENAME,
    VGGPerceptual,
    find_vgg_weights,
    maybe_vgg_perceptual,
    vgg_weight_candidates,
)
from .segmentation import ScratchLoss, bce_loss, focal_loss, soft_dice_loss

__all__ = [
    "FEATURE_MATCHING_WEIGHT",
    "LATENT_L1_WEIGHT",
    "VGG19_FILENAME",
    "ScratchLoss",
    "VGGPerceptual",
    "bce_loss",
    "feature_matching_loss",
    "find_vgg_weights",
    "focal_loss",
    "gradient_l1",
    "kl_divergence",
    "l1_reconstruction",
    "latent_l1",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "lsgan_loss",
    "maybe_vgg_perceptual",
    "soft_dice_loss",
    "ssim_loss",
    "vgg_weight_candidates",
]
