"""Partial nonlocal block: scratched latent cells are filled from intact ones, in memory linear in the cells.

After ``NonLocalBlock2D_with_mask_Res`` of the released code (Global/models/networks.py and
NonLocal_feature_mapping_model.py of "Bringing-Old-Photos-Back-to-Life"; paper Sec. 3.3): 1x1 projections
theta, phi, g to ``inter_channels`` (released: = ``channels`` = 512), attention from the damaged cells over
the intact cells only, a zero-initialised 1x1 projection W back to ``channels``, then 3 residual blocks.

For one image with ``x`` flattened to tokens ``x_i`` (i over the h*w cells) and ``V`` the valid cells::

    a_ij   = softmax_{j in V}( scale * theta(x_i) . phi(x_j) )        (a_ij = 0 exactly for j not in V)
    fused_i = x_i                          if i in V                   (bit-exact pass-through)
    fused_i = x_i + W( sum_{j in V} a_ij g(x_j) )   otherwise
    out    = res_blocks(fused)

``scale`` defaults to ``1 / sqrt(inter_channels)`` (scaled dot product; the released code uses the raw dot
product with temperature 1, which saturates the softmax at 512 channels). An image with no valid cell has
nothing to attend to: ``fused = x`` there. An image with no invalid cell has nothing to fill: ``fused = x``.

What is the identity at init: ``W`` starts at zero, so ``fused == x`` exactly (the issue's "the projection
starts at zero"). The residual blocks are gated (``y = x + gate * F(x)``) with ``gate`` starting at
``res_gate_init = 0.0``, so the whole block is exactly the identity at init; ``res_gate_init=None`` gives
the released ungated residual blocks, which are not.

Memory: the released block builds the dense (h*w) x (h*w) matrix (13.4 GiB for one 800x1200 photo). Here
only the invalid cells are queried, against the valid keys and values gathered first, with
``scaled_dot_product_attention`` called without a mask (its flash / memory-efficient kernels never
materialise the score matrix; an ``attn_mask`` would make it fall back to the dense path), and queries are
processed ``query_chunk`` rows at a time. Peak memory is O(cells * (channels + inter_channels)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResidualBlock, init_weights_, mark_zero_init


def latent_valid_from_mask(mask: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Pixel damage mask ``(N, 1, H, W)`` (True / 1 = damaged) -> latent validity ``(N, 1, H/f, W/f)`` bool.

    A latent cell is invalid if ANY pixel of its ``factor x factor`` patch is damaged (max-pooling); a
    partial patch at the border (H or W not a multiple of ``factor``) counts as a cell.
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (N, 1, H, W), got {tuple(mask.shape)}")
    damaged = F.max_pool2d((mask > 0.5).float(), kernel_size=factor, stride=factor, ceil_mode=True)
    return damaged < 0.5


def _flat_valid(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Validity as an ``(N, h*w)`` bool tensor on ``x``'s device (None: every cell valid)."""
    n, _, h, w = x.shape
    if valid is None:
        return torch.ones(n, h * w, dtype=torch.bool, device=x.device)
    if valid.dim() == 3:
        valid = valid[:, None]
    if valid.dim() != 4 or valid.shape[1] != 1 or valid.shape[0] != n or tuple(valid.shape[-2:]) != (h, w):
        raise ValueError(f"valid must be (N, 1, h, w) = ({n}, 1, {h}, {w}) like x, got {tuple(valid.shape)}")
    if valid.dtype != torch.bool:
        valid = valid > 0.5
    return valid.reshape(n, h * w).to(x.device)


def _as_linear(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A 1x1 conv's parameters as ``F.linear`` arguments (acting on ``(tokens, channels)``)."""
    return conv.weight.reshape(conv.out_channels, conv.in_channels), conv.bias


class PartialNonLocal(nn.Module):
    """Mask-aware nonlocal block; see the module docstring for the equations.

    ``forward(x, valid)``: ``x`` ``(N, C, h, w)`` float, ``valid`` ``(N, 1, h, w)`` bool or {0, 1} float
    (True = intact cell; None = all intact) -> ``(N, C, h, w)``.
    """

    def __init__(self, channels: int = 512, inter_channels: int | None = None, n_res_blocks: int = 3,
                 norm: str = "instance", scale: float | None = None, query_chunk: int = 4096,
                 res_gate_init: float | None = 0.0, init_seed: int = 0):
        super().__init__()
        d = inter_channels or channels
        self.channels, self.inter_channels = channels, d
        self.scale = float(scale) if scale is not None else 1.0 / math.sqrt(d)
        if query_chunk < 1:
            raise ValueError(f"query_chunk must be >= 1, got {query_chunk}")
        self.query_chunk = int(query_chunk)
        self.theta = nn.Conv2d(channels, d, 1)
        self.phi = nn.Conv2d(channels, d, 1)
        self.g = nn.Conv2d(channels, d, 1)
        self.W = mark_zero_init(nn.Conv2d(d, channels, 1))  # zero: fused == x at init
        self.res_blocks = nn.Sequential(*[ResidualBlock(channels, norm, res_gate_init) for _ in range(n_res_blocks)])
        init_weights_(self, init_seed)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return self.res_blocks(self.fuse(x, valid))

    def fuse(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """The attention + fusion stage alone (before the residual blocks): ``fused`` of the equations.

        When no image of the batch has cells to fill, the projections are still tied into the graph with
        a zero weight (under autograd), so every parameter gets a (zero) gradient, as DDP requires.
        """
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be (N, {self.channels}, h, w), got {tuple(x.shape)}")
        flat_valid = _flat_valid(x, valid)
        fused = torch.stack([self._fuse_one(x[b], flat_valid[b]) for b in range(x.shape[0])])
        needs_fill = (~flat_valid).any(dim=1) & flat_valid.any(dim=1)
        if torch.is_grad_enabled() and not bool(needs_fill.any()):
            # Nothing attended in this batch: tie the projections in with a zero so that
            # DistributedDataParallel still sees every parameter used (adds exactly 0 to x).
            projections = (self.theta, self.phi, self.g, self.W)
            fused = fused + sum(p.sum() for m in projections for p in m.parameters()) * 0.0
        return fused

    def _fuse_one(self, xb: torch.Tensor, vb: torch.Tensor) -> torch.Tensor:
        c, h, w = xb.shape
        q_idx = (~vb).nonzero().squeeze(1)
        k_idx = vb.nonzero().squeeze(1)
        if q_idx.numel() == 0 or k_idx.numel() == 0:
            return xb  # nothing to fill, or nothing to fill from
        tokens = xb.reshape(c, h * w).t()  # (cells, C), a view
        xq = tokens.index_select(0, q_idx)
        attended = self._attend(xq, tokens.index_select(0, k_idx))
        update = F.linear(attended, *_as_linear(self.W))
        # out-of-place index_copy: valid rows are copied bit for bit, gradients flow to x and W
        return tokens.index_copy(0, q_idx, xq + update).t().reshape(c, h, w)

    def _attend(self, xq: torch.Tensor, xk: torch.Tensor) -> torch.Tensor:
        """``(Nq, C)`` queries over ``(Nv, C)`` valid keys -> ``(Nq, inter_channels)`` attended values."""
        q = F.linear(xq, *_as_linear(self.theta))[None, None]
        k = F.linear(xk, *_as_linear(self.phi))[None, None]
        v = F.linear(xk, *_as_linear(self.g))[None, None]
        out = [
            F.scaled_dot_product_attention(q[:, :, s : s + self.query_chunk], k, v, scale=self.scale)
            for s in range(0, q.shape[2], self.query_chunk)
        ]
        return torch.cat(out, dim=2)[0, 0]

    @torch.no_grad()
    def attention_map(self, x: torch.Tensor, valid: torch.Tensor | None,
                      query_cells: Sequence[tuple[int, int]] | torch.Tensor, batch_index: int = 0) -> torch.Tensor:
        """Where given cells look: ``(Q, h, w)`` weights ``a_ij`` over the grid for image ``batch_index``.

        ``query_cells``: ``(row, col)`` pairs or a ``(Q,)`` tensor of flat indices ``row * w + col``.
        Each map is 0 at invalid cells and sums to 1 over valid ones (all zeros if no cell is valid).
        Computed explicitly (Q x cells memory): meant for a handful of cells, e.g. in a notebook.
        """
        _, c, h, w = x.shape
        vb = _flat_valid(x, valid)[batch_index]
        if isinstance(query_cells, torch.Tensor):
            q_idx = query_cells.reshape(-1).long().to(x.device)
        else:
            q_idx = torch.tensor([r * w + col for r, col in query_cells], dtype=torch.long, device=x.device)
        tokens = x[batch_index].reshape(c, h * w).t()
        q = F.linear(tokens.index_select(0, q_idx), *_as_linear(self.theta))
        k = F.linear(tokens, *_as_linear(self.phi))
        logits = (q @ k.t() * self.scale).masked_fill(~vb, float("-inf"))
        attn = torch.softmax(logits, dim=1) if vb.any() else torch.zeros_like(logits)
        return attn.reshape(-1, h, w)


def dense_partial_nonlocal_reference(block: PartialNonLocal, x: torch.Tensor, valid: torch.Tensor | None,
                                     return_attention: bool = False):
    """Reference ``fused`` of ``block`` built the released way: the full masked (h*w) x (h*w) softmax.

    Uses the block's convs on the whole image, ``logits = scale * theta^T phi`` for every pair of cells,
    ``-inf`` at invalid keys, a row softmax, ``y = A g``, ``W(y)``, then ``where(valid, x, x + W(y))``.
    Memory is O(cells^2): for tests and the benchmark only. Returns ``fused`` ``(N, C, h, w)``, and with
    ``return_attention`` also ``A`` ``(N, cells, cells)`` (rows of images without valid cells are 0).
    """
    n, c, h, w = x.shape
    vflat = _flat_valid(x, valid)
    theta = block.theta(x).flatten(2).transpose(1, 2)  # (N, cells, d)
    phi = block.phi(x).flatten(2)  # (N, d, cells)
    g = block.g(x).flatten(2).transpose(1, 2)  # (N, cells, d)
    logits = torch.bmm(theta, phi) * block.scale
    logits = logits.masked_fill(~vflat[:, None, :], float("-inf"))
    has_valid = vflat.any(dim=1)
    attn = torch.where(has_valid[:, None, None], torch.softmax(logits, dim=2).nan_to_num(0.0), 0.0)
    y = torch.bmm(attn, g).transpose(1, 2).reshape(n, block.inter_channels, h, w)
    filled = x + block.W(y)
    keep = vflat.reshape(n, 1, h, w) | ~has_valid[:, None, None, None]
    fused = torch.where(keep, x, filled)
    return (fused, attn) if return_attention else fused
