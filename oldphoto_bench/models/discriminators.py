"""PatchGAN discriminators (LSGAN): multiscale on images, single-scale on latents.

After pix2pixHD's ``NLayerDiscriminator`` / ``MultiscaleDiscriminator`` (Wang et al. 2018), which the
released "Bringing-Old-Photos-Back-to-Life" code uses (Global/models/networks.py) with ``ndf=64``,
``n_layers_D=3``, ``num_D=2``, InstanceNorm and intermediate features kept for feature matching; its
domain-adaptation model adds the same discriminator, one scale, on the 64-channel latents.

Both return ``list[list[Tensor]]``: one list per scale (finest first) holding the output of every stage,
the last being the patch prediction map ``(N, 1, h', w')`` (raw scores, no sigmoid: LSGAN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import init_weights_, norm_layer

Features = list[list[torch.Tensor]]


class PatchDiscriminator(nn.Module):
    """One PatchGAN: ``n_layers`` stride-2 4x4 convs (width doubling from ``base_channels``, capped at
    ``max_channels``; no norm on the first), one stride-1 4x4 conv, a 4x4 conv to 1 channel; LeakyReLU 0.2.

    ``forward(x)``: ``(N, in_channels, H, W)`` -> list of the ``n_layers + 2`` stage outputs.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3, max_channels: int = 512,
                 norm: str = "instance"):
        super().__init__()
        pad = math.ceil((4 - 1) / 2)  # = 2, as pix2pixHD
        stages: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, base_channels, 4, 2, pad), nn.LeakyReLU(0.2, inplace=True))
        ]
        width = base_channels
        for i in range(1, n_layers + 1):
            out = min(width * 2, max_channels)
            stride = 2 if i < n_layers else 1  # the last hidden stage keeps the resolution
            stages.append(nn.Sequential(nn.Conv2d(width, out, 4, stride, pad), norm_layer(norm, out),
                                        nn.LeakyReLU(0.2, inplace=True)))
            width = out
        stages.append(nn.Conv2d(width, 1, 4, 1, pad))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class MultiscalePatchDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the image and its 2x, 4x... average-pooled copies (pix2pixHD).

    ``forward(x)``: ``(N, in_channels, H, W)`` (images in [0, 1]) -> ``Features`` (finest scale first).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3, num_scales: int = 2,
                 max_channels: int = 512, norm: str = "instance", init_seed: int = 0):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, base_channels, n_layers, max_channels, norm) for _ in range(num_scales)
        )
        self.n_layers = n_layers
        init_weights_(self, init_seed)

    def forward(self, x: torch.Tensor) -> Features:
        out = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


class LatentDiscriminator(nn.Module):
    """A single-scale PatchGAN on latents ``(N, latent_channels, h, w)`` -> ``Features`` (one scale).

    Trained to tell VAE_A's latents of real old photos R from those of synthetic ones X; the encoder is
    trained to fool it, closing the R-X domain gap (paper Sec. 3.2).
    """

    def __init__(self, in_channels: int = 64, base_channels: int = 64, n_layers: int = 3, max_channels: int = 512,
                 norm: str = "instance", init_seed: int = 0):
        super().__init__()
        self.discriminator = PatchDiscriminator(in_channels, base_channels, n_layers, max_channels, norm)
        self.n_layers = n_layers
        init_weights_(self, init_seed)

    def forward(self, z: torch.Tensor) -> Features:
        return [self.discriminator(z)]
