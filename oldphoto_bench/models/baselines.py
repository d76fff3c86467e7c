"""Networks of the learned baselines of the benchmark: the pix2pix U-Net generator and the Deep Image Prior.

**UNetGenerator** (Isola et al. 2017, "Image-to-image translation with conditional adversarial networks",
Sec. 3.2.1 and the appendix; written from the paper's description): ``depth`` encoder blocks
``[LeakyReLU(0.2)], conv 4x4 stride 2, norm`` (no activation before the first, no norm on the first and on
the innermost) and mirrored decoder blocks ``ReLU, transposed conv 4x4 stride 2, norm, [dropout]`` whose
inputs are concatenated with the encoder output of the same resolution; the last block has no norm and ends
in ``tanh``. Widths ``c_i = min(base_channels * 2**i, max_channels)``: the paper's ``unet_256`` is
``base_channels=64, max_channels=512, depth=8`` (C64-C128-C256-C512-C512-C512-C512-C512) with dropout 0.5
in the three innermost decoder blocks. Deviations: InstanceNorm by default (pix2pix uses BatchNorm at
batch size 1, the same statistics per image); dropout draws from an explicit generator and is off in eval
mode (pix2pix keeps it at test time as its noise source; the benchmark wants deterministic outputs).
Images in ``[0, 1]`` are mapped to ``[-1, 1]`` inside and the output back, ``y = (tanh(.) + 1) / 2``.
Any size works: the input is padded (reflection) to a multiple of ``2**depth`` and cropped back.

**DIPNet** (Ulyanov et al. 2018, "Deep Image Prior", the "skip" encoder-decoder of their supplement, smaller
by default): ``depth`` levels of ``conv 3x3 stride 2, BN, LeakyReLU, conv 3x3, BN, LeakyReLU`` down,
``skip_channels`` 1x1 skip branches, bilinear x2 upsampling, ``BN, conv 3x3, BN, LeakyReLU, conv 1x1, BN,
LeakyReLU`` up, a final 1x1 conv and a sigmoid; reflection padding. Input: a fixed noise tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import init_weights_, norm_layer, pad_to_multiple, unpad


class SeededDropout(nn.Module):
    """Dropout whose mask comes from an explicit ``torch.Generator`` (set :attr:`generator` before a training
    forward); the identity in eval mode or when ``p == 0``. ``y = x * b / (1 - p)``, ``b ~ Bernoulli(1 - p)``."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None:
            raise RuntimeError("SeededDropout in training mode needs a generator (set module.generator)")
        keep = torch.rand(x.shape, generator=self.generator, device=self.generator.device) >= self.p
        return x * keep.to(device=x.device, dtype=x.dtype) / (1.0 - self.p)


class UNetGenerator(nn.Module):
    """The pix2pix U-Net (see the module docstring). ``(N, 3, H, W)`` in [0, 1] -> ``(N, 3, H, W)`` in [0, 1]."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                 max_channels: int = 512, depth: int = 8, norm: str = "instance", dropout: float = 0.5,
                 dropout_blocks: int = 3, init_seed: int = 0):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        widths = [min(base_channels * 2**i, max_channels) for i in range(depth)]
        self.depth, self.multiple = int(depth), 2 ** int(depth)
        downs = []
        for i in range(depth):
            cin = in_channels if i == 0 else widths[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, widths[i], 4, stride=2, padding=1))
            if 0 < i < depth - 1:  # no norm on the outermost and innermost encoder blocks (pix2pix)
                layers.append(norm_layer(norm, widths[i]))
            downs.append(nn.Sequential(*layers))
        ups = []
        self.dropouts: list[SeededDropout] = []
        for i in range(depth):  # ups[i] produces the resolution of downs[i]'s input
            cin = widths[i] if i == depth - 1 else 2 * widths[i]
            cout = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)]
            if i > 0:
                layers.append(norm_layer(norm, cout))
                if depth - 1 - i < dropout_blocks and dropout > 0:  # the innermost decoder blocks
                    drop = SeededDropout(dropout)
                    self.dropouts.append(drop)
                    layers.append(drop)
            ups.append(nn.Sequential(*layers))
        self.downs, self.ups = nn.ModuleList(downs), nn.ModuleList(ups)
        init_weights_(self, init_seed)

    def set_generator(self, generator: torch.Generator | None) -> None:
        """The generator every dropout layer draws from (training only)."""
        for d in self.dropouts:
            d.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, pad = pad_to_multiple(x * 2.0 - 1.0, self.multiple)
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        y = self.ups[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            y = self.ups[i](torch.cat([y, skips[i]], dim=1))
        return unpad((torch.tanh(y) + 1.0) * 0.5, pad)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride=stride)] if k > 1 else [nn.Conv2d(cin, cout, 1)]


class DIPNet(nn.Module):
    """The Deep Image Prior encoder-decoder (see the module docstring).

    ``(N, in_channels, H, W)`` noise -> ``(N, 3, H, W)`` in [0, 1]; H and W are padded (reflection) to a
    multiple of ``2**depth`` and cropped back.
    """

    def __init__(self, in_channels: int = 32, width: int = 64, skip_channels: int = 4, depth: int = 4,
                 out_channels: int = 3, init_seed: int = 0):
        super().__init__()
        self.depth, self.multiple = int(depth), 2 ** int(depth)
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.downs, self.skips, self.ups = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cin = in_channels
        for _ in range(depth):
            self.skips.append(nn.Sequential(*_conv(cin, skip_channels, 1), nn.BatchNorm2d(skip_channels), act()))
            self.downs.append(nn.Sequential(*_conv(cin, width, 3, 2), nn.BatchNorm2d(width), act(),
                                            *_conv(width, width, 3), nn.BatchNorm2d(width), act()))
            self.ups.append(nn.Sequential(nn.BatchNorm2d(width + skip_channels),
                                          *_conv(width + skip_channels, width, 3), nn.BatchNorm2d(width), act(),
                                          *_conv(width, width, 1), nn.BatchNorm2d(width), act()))
            cin = width
        self.head = nn.Conv2d(width, out_channels, 1)
        init_weights_(self, init_seed)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z, pad = pad_to_multiple(z, self.multiple)
        skips, x = [], z
        for skip, down in zip(self.skips, self.downs, strict=True):
            skips.append(skip(x))
            x = down(x)
        for i in range(self.depth - 1, -1, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.ups[i](torch.cat([skips[i], x], dim=1))
        return unpad(torch.sigmoid(self.head(x)), pad)
