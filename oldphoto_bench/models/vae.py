"""The VAE of the triplet domain translation: images in [0, 1] <-> a 64-channel latent at H/4 x W/4.

Architecture after ``GlobalGenerator_DCDCv2`` in the released code (Global/models/networks.py of
"Bringing-Old-Photos-Back-to-Life", run with ``ngf=64, mc=64, k_size=4``): a reflection-padded 7x7 conv
stem, stride-2 4x4 convs whose channel doubling is capped at ``max_channels`` (the released ``mc=64`` caps
every layer at 64), residual blocks, InstanceNorm and ReLU. The decoder mirrors it with 4x4 transposed
convs and a reflection-padded 7x7 conv to RGB.

Unlike the released code (whose latent is the encoder output, with noise added during training), this is
a proper VAE: 1x1 conv heads give ``mu`` and ``logvar`` and training samples ``z = mu + exp(logvar / 2) *
eps``. The decoder ends in a sigmoid (= the released ``(tanh(2t) + 1) / 2`` mapped to [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ResidualBlock, check_multiple, conv_norm_relu, init_weights_


@dataclass
class VAEOutput:
    """``recon`` (N, 3, H, W) in [0, 1]; ``mu``, ``logvar``, ``z`` (N, latent_channels, H/4, W/4)."""

    recon: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


def _widths(base: int, cap: int, n: int) -> list[int]:
    """Channel widths at each resolution level: base * 2**i capped at ``cap``."""
    return [min(base * 2**i, cap) for i in range(n + 1)]


class VAEEncoder(nn.Module):
    """``(N, in_channels, H, W) -> (mu, logvar)``, each ``(N, latent_channels, H / 2**n_down, W / 2**n_down)``."""

    def __init__(self, in_channels: int = 3, base_channels: int = 64, max_channels: int = 64,
                 latent_channels: int = 64, n_downsample: int = 2, n_res_blocks: int = 4, norm: str = "instance"):
        super().__init__()
        widths = _widths(base_channels, max_channels, n_downsample)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *conv_norm_relu(in_channels, widths[0], 7, norm=norm)]
        for i in range(n_downsample):
            layers += conv_norm_relu(widths[i], widths[i + 1], 4, stride=2, padding=1, norm=norm)
        layers += [ResidualBlock(widths[-1], norm) for _ in range(n_res_blocks)]
        self.body = nn.Sequential(*layers)
        self.mu_head = nn.Conv2d(widths[-1], latent_channels, 1)
        self.logvar_head = nn.Conv2d(widths[-1], latent_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu_head(h), self.logvar_head(h)


class VAEDecoder(nn.Module):
    """``(N, latent_channels, h, w) -> (N, out_channels, h * 2**n_up, w * 2**n_up)`` in [0, 1]."""

    def __init__(self, out_channels: int = 3, base_channels: int = 64, max_channels: int = 64,
                 latent_channels: int = 64, n_upsample: int = 2, n_res_blocks: int = 4, norm: str = "instance"):
        super().__init__()
        widths = _widths(base_channels, max_channels, n_upsample)
        # 1x1 conv from the latent to the feature width (mirrors the encoder's heads)
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, widths[-1], 1)]
        layers += [ResidualBlock(widths[-1], norm) for _ in range(n_res_blocks)]
        for i in range(n_upsample, 0, -1):
            # kernel 4, stride 2, padding 1: exactly doubles H and W
            layers += conv_norm_relu(widths[i], widths[i - 1], 4, stride=2, padding=1, norm=norm, transpose=True)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(widths[0], out_channels, 7), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class VAE(nn.Module):
    """Encoder + decoder with reparameterised sampling.

    Input ``x``: ``(N, 3, H, W)`` float in [0, 1], H and W multiples of ``2**n_down`` (4 by default; use
    :func:`~oldphoto_bench.models.blocks.pad_to_multiple` first otherwise).

    ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)`` drawn from ``generator`` when one is passed
    (a CPU generator is fine for a CUDA model: the draw is moved), else from ``torch.randn_like`` (torch's
    global generator: only acceptable where reproducibility is not required, e.g. multi-GPU training where
    every rank seeds its own CUDA stream).

    Weights are initialised from ``init_seed`` (N(0, 0.02) as pix2pixHD), never from global random state.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, max_channels: int = 64,
                 latent_channels: int = 64, n_down: int = 2, n_res_blocks: int = 4, norm: str = "instance",
                 init_seed: int = 0):
        super().__init__()
        self.n_down = n_down
        self.latent_channels = latent_channels
        self.encoder = VAEEncoder(in_channels, base_channels, max_channels, latent_channels, n_down, n_res_blocks, norm)
        self.decoder = VAEDecoder(in_channels, base_channels, max_channels, latent_channels, n_down, n_res_blocks, norm)
        init_weights_(self, init_seed)

    @property
    def multiple(self) -> int:
        """H and W of inputs must be multiples of this."""
        return 2**self.n_down

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, H, W)`` in [0, 1] -> ``(mu, logvar)``, each ``(N, latent_channels, H/4, W/4)``."""
        check_multiple(x, self.multiple, "VAE input")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent_channels, h, w)`` -> ``(N, 3, 4h, 4w)`` in [0, 1]."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``z = mu + exp(logvar / 2) * eps``; see the class docstring for where ``eps`` comes from."""
        if generator is None:
            eps = torch.randn_like(mu)
        else:
            eps = torch.randn(mu.shape, generator=generator, device=generator.device, dtype=mu.dtype).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, sample (``z = mu`` when ``sample=False``) and decode."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return VAEOutput(recon=self.decode(z), mu=mu, logvar=logvar, z=z)
