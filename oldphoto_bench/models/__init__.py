"""Networks of the latent translation: VAEs, the latent mapping with a partial nonlocal block, discriminators;
and the scratch-detection U-Net.

Build from configs through :data:`NETWORKS` (``{"type": "vae", "base_channels": 8, ...}``).
"""

from ..registry import Registry
from .blocks import ResidualBlock, init_weights_, pad_to_multiple, unpad
from .discriminators import LatentDiscriminator, MultiscalePatchDiscriminator, PatchDiscriminator
from .mapping import MappingNetwork
from .nonlocal_block import PartialNonLocal, dense_partial_nonlocal_reference, latent_valid_from_mask
from .unet import DETECTION_THRESHOLD, ScratchUNet, to_detector_input
from .vae import VAE, VAEDecoder, VAEEncoder, VAEOutput

NETWORKS = Registry("network")
NETWORKS.register("vae")(VAE)
NETWORKS.register("mapping")(MappingNetwork)
NETWORKS.register("partial_nonlocal")(PartialNonLocal)
NETWORKS.register("multiscale_patchgan")(MultiscalePatchDiscriminator)
NETWORKS.register("latent_patchgan")(LatentDiscriminator)
NETWORKS.register("scratch_unet")(ScratchUNet)

__all__ = [
    "DETECTION_THRESHOLD",
    "NETWORKS",
    "VAE",
    "LatentDiscriminator",
    "MappingNetwork",
    "MultiscalePatchDiscriminator",
    "PartialNonLocal",
    "PatchDiscriminator",
    "ResidualBlock",
    "ScratchUNet",
    "VAEDecoder",
    "VAEEncoder",
    "VAEOutput",
    "dense_partial_nonlocal_reference",
    "init_weights_",
    "latent_valid_from_mask",
    "pad_to_multiple",
    "to_detector_input",
    "unpad",
]
