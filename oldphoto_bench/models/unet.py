"""The scratch detector: a U-Net from a grayscale photo to per-pixel scratch logits.

Architecture after the released detector (``UNet`` in Global/detection_models/networks.py of
"Bringing-Old-Photos-Back-to-Life", built in Global/detection.py with ``in_channels=1, out_channels=1,
depth=4, conv_num=2, wf=6, batch_norm=True, up_mode="upsample", antialiasing=True``); written anew here:

* stem: reflection pad 3, 7x7 conv ``in -> c_0``, LeakyReLU(0.2);
* ``depth`` down levels ``i = 0..depth-1``: reflection pad 1, 3x3 conv ``c_i -> c_i``, norm, LeakyReLU, then an
  anti-aliased stride-2 subsampling (a 3x3 binomial blur ``[1, 2, 1]^T [1, 2, 1] / 16`` with reflection
  padding, Zhang 2019 "Making convolutional networks shift-invariant again"), then two
  ``[reflection pad 1, 3x3 conv, norm, LeakyReLU]`` layers ``c_i -> c_{i+1}``;
* ``depth`` up levels: bilinear x2 upsampling, reflection pad 1, 3x3 conv ``c_{i+1} -> c_i`` (no norm), concat
  with the skip of the same resolution (``2 c_i`` channels), two conv-norm-LeakyReLU layers ``-> c_i``;
* head: reflection pad 1, 3x3 conv ``c_0 -> out`` giving logits (no sigmoid).

Widths ``c_i = min(base_channels * 2**i, max_channels)``: the released ``wf=6, depth=4`` gives 64, 128, 256,
512, 1024. Input: luma in [0, 1] (:func:`to_detector_input`); the released code feeds
``Normalize([0.5], [0.5])`` of the PIL ``convert("L")`` luma, i.e. ``2 Y - 1`` in [-1, 1], which the network
does as its first step (``normalize_input=True``). The released inference thresholds ``sigmoid >= 0.4``
(:data:`DETECTION_THRESHOLD`) and runs on a copy rescaled to a 256-pixel short side rounded to a multiple of
16; here the network runs at full resolution (tiled by :func:`oldphoto_bench.restore.run_tiled`) and any
size is padded instead of resized (:meth:`ScratchUNet.forward_any_size`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..imageio import rgb_to_luma
from .blocks import check_multiple, init_weights_, norm_layer

# Released Global/detection.py: ``mask = sigmoid(logits) >= 0.4``.
DETECTION_THRESHOLD = 0.4
UP_MODES = ("bilinear", "transpose")
LEAKY_SLOPE = 0.2  # released LeakyReLU(0.2)


def to_detector_input(image: torch.Tensor, channels: int = 1) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` gray in [0, 1] -> ``(N, channels, H, W)`` in [0, 1].

    ``channels=1`` (released): luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (BT.601, what the released code's PIL
    ``convert("L")`` computes). ``channels=3``: RGB as it is (a gray photo repeated), for a detector that may
    use colour (a white scratch has none; an edge between coloured objects often has). The released
    ``[-1, 1]`` normalisation happens inside :class:`ScratchUNet` (``normalize_input``).
    """
    if image.dim() != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 3, H, W) RGB or (N, 1, H, W) gray, got {tuple(image.shape)}")
    if channels == 1:
        return image if image.shape[1] == 1 else rgb_to_luma(image)
    if channels == 3:
        return image if image.shape[1] == 3 else image.expand(-1, 3, -1, -1)
    raise ValueError(f"a detector takes 1 (luma) or 3 (RGB) channels, got {channels}")


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 subsampling: depthwise 3x3 binomial blur, reflection padding 1, stride 2.

    ``(N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))``; kernel ``k = [1, 2, 1]^T [1, 2, 1] / 16`` (sums to 1).
    """

    def __init__(self):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        # Fixed, not learned, and rebuilt at construction: kept out of the state dict.
        self.register_buffer("kernel", (a[:, None] * a[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.expand(c, 1, 3, 3).to(x.dtype),
                        stride=2, groups=c)


def _conv_block(cin: int, cout: int, n_convs: int, norm: str) -> nn.Sequential:
    """``n_convs`` x [reflection pad 1, 3x3 conv, norm, LeakyReLU(0.2)]: the released ``UNetConvBlock``."""
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin if i == 0 else cout, cout, 3), norm_layer(norm, cout),
                   nn.LeakyReLU(LEAKY_SLOPE, inplace=True)]
    return nn.Sequential(*layers)


class _Down(nn.Module):
    """``(N, cin, H, W) -> (N, cout, H/2, W/2)``: conv-norm-act, subsample, conv block."""

    def __init__(self, cin: int, cout: int, n_convs: int, norm: str, antialias: bool):
        super().__init__()
        if antialias:
            reduce = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cin, 3), norm_layer(norm, cin),
                      nn.LeakyReLU(LEAKY_SLOPE, inplace=True), BlurDownsample()]
        else:  # released ``antialiasing=False`` branch: a strided 4x4 conv
            reduce = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cin, 4, stride=2), norm_layer(norm, cin),
                      nn.LeakyReLU(LEAKY_SLOPE, inplace=True)]
        self.reduce = nn.Sequential(*reduce)
        self.block = _conv_block(cin, cout, n_convs, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.reduce(x))


class _Up(nn.Module):
    """``(N, cin, h, w), skip (N, cout, 2h, 2w) -> (N, cout, 2h, 2w)``: upsample, concat skip, conv block."""

    def __init__(self, cin: int, cout: int, n_convs: int, norm: str, up: str):
        super().__init__()
        if up == "bilinear":
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))
        elif up == "transpose":
            self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        else:
            raise KeyError(f"unknown up mode {up!r}; valid names: {', '.join(UP_MODES)}")
        self.block = _conv_block(2 * cout, cout, n_convs, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class ScratchUNet(nn.Module):
    """Scratch detector ``(N, in_channels, H, W)`` luma (or RGB, ``in_channels=3``) in [0, 1] ->
    ``(N, out_channels, H, W)`` logits.

    ``forward`` needs H and W to be multiples of :attr:`multiple` ``= 2**depth`` and at least
    ``2 * multiple`` (the bottleneck is then at least 2x2, which its reflection padding needs);
    :meth:`forward_any_size` pads any size to that and crops back, :meth:`predict_proba` is
    ``sigmoid(forward_any_size(x))``. Defaults are the released detector's (see the module docstring). In
    eval mode (BatchNorm on running statistics) the network is fully convolutional, so it can be tiled.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 4, base_channels: int = 64,
                 max_channels: int = 1024, norm: str = "batch", up: str = "bilinear", convs_per_block: int = 2,
                 antialias: bool = True, normalize_input: bool = True, init_seed: int = 0):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        widths = [min(base_channels * 2**i, max_channels) for i in range(depth + 1)]
        self.depth = depth
        self.in_channels = int(in_channels)
        self.widths = widths
        self.normalize_input = normalize_input
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, widths[0], 7),
                                  nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        self.downs = nn.ModuleList(_Down(widths[i], widths[i + 1], convs_per_block, norm, antialias)
                                   for i in range(depth))
        self.ups = nn.ModuleList(_Up(widths[i + 1], widths[i], convs_per_block, norm, up)
                                 for i in reversed(range(depth)))
        self.head = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(widths[0], out_channels, 3))
        init_weights_(self, init_seed)

    @property
    def multiple(self) -> int:
        """H and W of :meth:`forward`'s input must be multiples of this (``2**depth``)."""
        return 2**self.depth

    @property
    def min_size(self) -> int:
        """Smallest H and W :meth:`forward` accepts (``2 * multiple``)."""
        return 2 * self.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_multiple(x, self.multiple, "scratch detector input")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"scratch detector input must be at least {self.min_size}x{self.min_size}, got "
                             f"{tuple(x.shape[-2:])}; use forward_any_size()")
        h = self.stem(2.0 * x - 1.0 if self.normalize_input else x)
        skips = []
        for down in self.downs:
            skips.append(h)
            h = down(h)
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            h = up(h, skip)
        return self.head(h)

    def forward_any_size(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for any ``(N, C, H, W)``: pad bottom/right (reflect; replicate where the image is too small to
        reflect) to a multiple of :attr:`multiple` that is at least :attr:`min_size`, run, crop to H x W."""
        h, w = x.shape[-2:]
        th = max(math.ceil(h / self.multiple) * self.multiple, self.min_size)
        tw = max(math.ceil(w / self.multiple) * self.multiple, self.min_size)
        if (th, tw) != (h, w):
            mode = "reflect" if th - h < h and tw - w < w else "replicate"
            x = F.pad(x, (0, tw - w, 0, th - h), mode=mode)
        return self(x)[..., :h, :w]

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Scratch probability ``sigmoid(logits)`` in [0, 1], ``(N, out_channels, H, W)``, any H and W."""
        return torch.sigmoid(self.forward_any_size(x))
