"""The face enhancement network: a SPADE-style progressive generator conditioned on the degraded face.

As the released Face_Enhancement model (a SPADE generator, Park et al. 2019, whose "semantic" input is the
degraded face; no parsing map here): the degraded face, resized to a small grid (8x8 for 256^2), is
embedded by a 3x3 conv; a stack of SPADE residual blocks with 2x nearest upsampling between them grows it to
the output size; every SPADE normalisation modulates parameter-free normalised activations with a per-pixel
scale and shift predicted from the degraded face resized to that block's resolution::

    SPADE(h, s) = norm(h) * (1 + gamma(s)) + beta(s),   [gamma, beta] = convs(ReLU(conv(s)))

Output ``(tanh(conv(LeakyReLU(h))) + 1) / 2`` in [0, 1]; with ``residual=True`` (not in the released model)
the network predicts a correction of its input instead, ``clamp(x + tanh(conv(LeakyReLU(h))), 0, 1)`` with
the last conv zero-initialised, so an untrained network is the identity and training only has to learn what
to change (measured on aged faces/ffhq10 at 128 px: see results/faces/README.md).

Widths follow the released generator (``ngf = 64``, at most ``16 ngf = 1024`` channels, 128 hidden channels
in SPADE, 5 upsamplings from 8x8 to 256x256); block ``k`` of ``num_up + 1`` has
``min(max_channels, base_channels * 2^(num_up - k))`` channels. Deviations: instance norm instead of the
released synchronised batch norm (batch statistics need large multi-GPU batches; instance norm works with
one face at inference), and no spectral norm (its power-iteration vectors would be drawn from the global
random state); weights are initialised N(0, 0.02) from ``init_seed``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models.blocks import init_weights_, norm_layer


def resize_condition(cond: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The conditioning face at ``size``: area-averaged when shrinking (no aliasing), bilinear when growing."""
    if tuple(cond.shape[-2:]) == tuple(size):
        return cond
    if size[0] <= cond.shape[-2] and size[1] <= cond.shape[-1]:
        return F.adaptive_avg_pool2d(cond, size)
    return F.interpolate(cond, size=size, mode="bilinear", align_corners=False)


class SPADE(nn.Module):
    """``norm(x) * (1 + gamma(s)) + beta(s)``; ``x``: ``(N, C, H, W)``, ``s``: ``(N, cond_channels, h, w)``
    (resized to ``H x W`` here)."""

    def __init__(self, channels: int, cond_channels: int = 3, hidden: int = 128, norm: str = "instance"):
        super().__init__()
        self.norm = norm_layer(norm, channels)
        if isinstance(self.norm, nn.BatchNorm2d):
            self.norm = nn.BatchNorm2d(channels, affine=False)  # parameter-free, as SPADE requires
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.shared(resize_condition(cond, tuple(x.shape[-2:])))
        return self.norm(x) * (1.0 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """``y = shortcut(x) + conv(act(SPADE(conv(act(SPADE(x, s))), s)))``, middle width ``min(cin, cout)``;
    the shortcut is ``conv1x1(SPADE(x, s))`` (no bias) when ``cin != cout``, else the identity."""

    def __init__(self, cin: int, cout: int, cond_channels: int = 3, hidden: int = 128, norm: str = "instance"):
        super().__init__()
        mid = min(cin, cout)
        self.norm_0 = SPADE(cin, cond_channels, hidden, norm)
        self.conv_0 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm_1 = SPADE(mid, cond_channels, hidden, norm)
        self.conv_1 = nn.Conv2d(mid, cout, 3, padding=1)
        self.learned_shortcut = cin != cout
        if self.learned_shortcut:
            self.norm_s = SPADE(cin, cond_channels, hidden, norm)
            self.conv_s = nn.Conv2d(cin, cout, 1, bias=False)

    @staticmethod
    def _act(x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        skip = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(self._act(self.norm_0(x, cond)))
        dx = self.conv_1(self._act(self.norm_1(dx, cond)))
        return skip + dx


class SPADEFaceGenerator(nn.Module):
    """Degraded aligned face ``(N, 3, size, size)`` in [0, 1] -> restored face, same shape, in [0, 1].

    size: output side (power-of-two multiple of ``start_size``; 256 as released, 64 / 128 for tiny runs);
    start_size: side of the first feature map (8 as released); base_channels / max_channels: widths
    (64 / 1024 as released); hidden: SPADE's hidden width (128 as released); norm: ``instance`` or ``batch``;
    residual: output ``clamp(x + tanh(.), 0, 1)`` (last conv zero-initialised) instead of ``(tanh(.) + 1) / 2``.
    """

    def __init__(self, size: int = 256, base_channels: int = 64, max_channels: int = 1024, start_size: int = 8,
                 hidden: int = 128, norm: str = "instance", in_channels: int = 3, init_seed: int = 0,
                 residual: bool = False):
        super().__init__()
        ratio = size / start_size
        num_up = round(math.log2(ratio)) if ratio >= 1 else -1
        if num_up < 0 or start_size * 2**num_up != size:
            raise ValueError(f"size {size} must be start_size {start_size} times a power of two")
        self.size, self.start_size, self.num_up, self.in_channels = size, start_size, num_up, in_channels
        self.residual = bool(residual)
        if self.residual and in_channels != 3:
            raise ValueError(f"residual=True adds the output to the input face: in_channels must be 3, got {in_channels}")
        widths = [min(max_channels, base_channels * 2 ** (num_up - k)) for k in range(num_up + 1)]
        self.widths = widths
        self.head = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            SPADEResBlock(widths[max(k - 1, 0)], widths[k], in_channels, hidden, norm) for k in range(num_up + 1)
        )
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)
        init_weights_(self, init_seed)
        if self.residual:  # start as the identity
            nn.init.zeros_(self.to_rgb.weight)
            nn.init.zeros_(self.to_rgb.bias)

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        if degraded.dim() != 4 or degraded.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W), got {tuple(degraded.shape)}")
        if tuple(degraded.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"this generator takes {self.size}x{self.size} faces, got "
                             f"{degraded.shape[-2]}x{degraded.shape[-1]}; align faces at size={self.size}")
        x = self.head(resize_condition(degraded, (self.start_size, self.start_size)))
        for k, block in enumerate(self.blocks):
            if k:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, degraded)
        out = torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))
        if self.residual:
            return (degraded + out).clamp(0.0, 1.0)
        return (out + 1.0) / 2.0
