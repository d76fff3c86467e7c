"""The latent mapping network T: latent of VAE_A (old photos) -> latent of VAE_B (clean photos).

After ``Mapping_Model`` / ``Mapping_Model_with_mask`` of the released code (Global/models/mapping_model.py
and NonLocal_feature_mapping_model.py of "Bringing-Old-Photos-Back-to-Life"; paper Sec. 3.3)::

    z (N, 64, h, w) -> [3x3 conv, norm, ReLU] 64 -> 128 -> 256 -> 512
                    -> [optional partial nonlocal block at 512, fed the latent validity mask]
                    -> n_res_blocks residual blocks at 512 (released: 6)
                    -> [3x3 conv, norm, ReLU] 512 -> 256 -> 128 -> 3x3 conv 128 -> 64

The nonlocal block sits right after the up-channel convs, at the widest width, as released. The released
up path has a fourth 512 -> 512 conv and a 512 -> 512 first down conv; the issue's 64->128->256->512 is
used here (``widths`` makes either possible). The last conv has no norm or activation: latents are
unbounded. Spatial size never changes.

Two options of the small CPU recipe (off by default, as released; ``configs/train/tiny.yaml`` says why they
are on there):

* ``residual=True``: ``T(z) = z + F(z)`` with the last conv of ``F`` zero-initialised, so T starts as the
  identity and only learns the correction. With VAE_A warm-started from VAE_B the two latent spaces start
  aligned, and a clean photo's code passes through unchanged instead of being re-synthesised.
* ``global_context=True``: a :class:`GlobalContext` (FiLM) layer after the nonlocal block scales and shifts
  every channel from the mean and standard deviation of the features over the whole image, the statistics
  that fading, yellowing and contrast shifts change at photo scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import ResidualBlock, init_weights_, mark_zero_init, norm_layer
from .nonlocal_block import PartialNonLocal


def _conv3x3_norm_relu(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), norm_layer(norm, cout), nn.ReLU(inplace=True)]


class GlobalContext(nn.Module):
    """``(N, C, h, w) -> (N, C, h, w)``: ``h * (1 + gamma) + beta``, ``[gamma, beta] = MLP([mean(h), std(h)])``.

    Mean and std are taken over every spatial cell, so the modulation depends on the whole image (at test
    time the whole photo, in training the crop). The MLP's last layer starts at zero: the identity at init.
    """

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = int(hidden or channels)
        self.channels = int(channels)
        self.mlp = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True),
                                 mark_zero_init(nn.Linear(hidden, 2 * channels)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        flat = h.float().flatten(2)
        stats = torch.cat([flat.mean(-1), flat.std(-1, unbiased=False)], dim=1).to(h.dtype)  # (N, 2C)
        gamma, beta = self.mlp(stats).chunk(2, dim=1)
        return h * (1 + gamma[..., None, None]) + beta[..., None, None]


class MappingNetwork(nn.Module):
    """``forward(z, valid=None)``: ``(N, latent_channels, h, w) -> (N, latent_channels, h, w)``.

    ``valid`` ``(N, 1, h, w)`` (True = latent cell untouched by scratches; see
    :func:`~oldphoto_bench.models.nonlocal_block.latent_valid_from_mask`) is required to be None unless
    the network was built with ``nonlocal_block=True``; with the block and ``valid=None`` every cell is
    valid (the block's fusion is then the identity).
    """

    def __init__(self, latent_channels: int = 64, widths: Sequence[int] = (128, 256, 512), n_res_blocks: int = 6,
                 norm: str = "instance", nonlocal_block: bool = False, nonlocal_inter_channels: int | None = None,
                 nonlocal_res_blocks: int = 3, nonlocal_query_chunk: int = 4096,
                 nonlocal_res_gate_init: float | None = 0.0, residual: bool = False,
                 global_context: bool = False, init_seed: int = 0):
        super().__init__()
        widths = [int(c) for c in widths]
        if not widths:
            raise ValueError("widths must name at least one width")
        chans = [latent_channels, *widths]
        up: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            up += _conv3x3_norm_relu(cin, cout, norm)
        self.up = nn.Sequential(*up)
        self.nonlocal_block = (
            PartialNonLocal(widths[-1], nonlocal_inter_channels, nonlocal_res_blocks, norm,
                            query_chunk=nonlocal_query_chunk, res_gate_init=nonlocal_res_gate_init)
            if nonlocal_block else None
        )
        body: list[nn.Module] = [ResidualBlock(widths[-1], norm) for _ in range(n_res_blocks)]
        down_chans = widths[::-1]  # 512, 256, 128
        for cin, cout in zip(down_chans[:-1], down_chans[1:], strict=True):
            body += _conv3x3_norm_relu(cin, cout, norm)
        last = nn.Conv2d(down_chans[-1], latent_channels, 3, padding=1)
        body.append(mark_zero_init(last) if residual else last)
        self.body = nn.Sequential(*body)
        self.context = GlobalContext(widths[-1]) if global_context else None
        self.residual = bool(residual)
        init_weights_(self, init_seed)

    @property
    def has_nonlocal(self) -> bool:
        return self.nonlocal_block is not None

    @torch.no_grad()
    def attention_map(self, z: torch.Tensor, valid: torch.Tensor | None, query_cells) -> torch.Tensor:
        """Where latent cells look inside the partial nonlocal block: ``(Q, h, w)`` attention weights for the
        ``(row, col)`` ``query_cells`` of latent ``z`` (1, C, h, w) (see :meth:`PartialNonLocal.attention_map`)."""
        if self.nonlocal_block is None:
            raise ValueError("this MappingNetwork has no nonlocal block (nonlocal_block=False)")
        return self.nonlocal_block.attention_map(self.up(z), valid, query_cells)

    def forward(self, z: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        h = self.up(z)
        if self.nonlocal_block is not None:
            h = self.nonlocal_block(h, valid)
        elif valid is not None:
            raise ValueError("this MappingNetwork has no nonlocal block (nonlocal_block=False); pass valid=None")
        if self.context is not None:
            h = self.context(h)
        out = self.body(h)
        return z + out if self.residual else out
