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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import ResidualBlock, init_weights_, norm_layer
from .nonlocal_block import PartialNonLocal


def _conv3x3_norm_relu(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), norm_layer(norm, cout), nn.ReLU(inplace=True)]


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
                 nonlocal_res_gate_init: float | None = 0.0, init_seed: int = 0):
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
        body.append(nn.Conv2d(down_chans[-1], latent_channels, 3, padding=1))
        self.body = nn.Sequential(*body)
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
        return self.body(h)
