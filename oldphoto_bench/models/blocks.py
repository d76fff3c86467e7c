"""Shared building blocks: normalisation layers, the residual block, seeded weight init, padding helpers.

Defaults follow pix2pixHD / the released "Bringing-Old-Photos-Back-to-Life" code (Global/models/networks.py):
InstanceNorm without affine parameters, reflection padding, ReLU, and conv weights drawn from N(0, 0.02).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..seeding import torch_generator

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``"instance"`` (InstanceNorm2d, affine=False: the released default), ``"batch"`` or ``"none"``."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise KeyError(f"unknown norm {kind!r}; valid names: {', '.join(NORMS)}")


class ResidualBlock(nn.Module):
    """``y = x + gate * F(x)`` with ``F = [reflect-pad, conv3x3, norm, ReLU, reflect-pad, conv3x3, norm]``.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``. This is the pix2pixHD ``ResnetBlock`` used throughout the
    released code. ``gate_init=None`` (default) means no gate (``gate = 1``, as released); a float makes
    ``gate`` a learnable scalar starting at that value (``0.0`` makes the block exactly the identity at
    init, as in ReZero, Bachlechner et al. 2020).
    """

    def __init__(self, channels: int, norm: str = "instance", gate_init: float | None = None):
        super().__init__()
        self.branch = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels),
        )
        self.gate = None if gate_init is None else nn.Parameter(torch.tensor(float(gate_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return x + (out if self.gate is None else self.gate * out)


def conv_norm_relu(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                   norm: str = "instance", transpose: bool = False) -> list[nn.Module]:
    conv = nn.ConvTranspose2d if transpose else nn.Conv2d
    return [conv(cin, cout, kernel, stride=stride, padding=padding), norm_layer(norm, cout), nn.ReLU(inplace=True)]


def mark_zero_init(module: nn.Module) -> nn.Module:
    """Zero ``module``'s weight and bias now, and have :func:`init_weights_` keep them at zero."""
    module.zero_init = True  # type: ignore[attr-defined]
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            p.zero_()
    return module


@torch.no_grad()
def init_weights_(module: nn.Module, seed: int, std: float = 0.02) -> nn.Module:
    """Re-initialise ``module`` in place from ``seed`` (no global random state is read).

    pix2pixHD / released ``weights_init``: conv and linear weights ~ N(0, std), biases 0; batch-norm
    scales ~ N(1, std), shifts 0. Modules marked by :func:`mark_zero_init` are set to zero. Modules are
    visited in registration order, so the same seed gives the same bytes.
    """
    gen = torch_generator(seed)
    for m in module.modules():
        if getattr(m, "zero_init", False):
            for p in m.parameters(recurse=False):
                p.zero_()
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.weight.copy_(torch.empty(m.weight.shape).normal_(0.0, std, generator=gen))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.empty(m.weight.shape).normal_(1.0, std, generator=gen))
            m.bias.zero_()
    return module


def check_multiple(x: torch.Tensor, multiple: int, what: str = "input") -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, C, H, W)`` with H and W multiples of ``multiple``."""
    if x.dim() != 4:
        raise ValueError(f"{what} must be (N, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"{what} height and width must be multiples of {multiple}, got {h}x{w}; "
            f"pad first with oldphoto_bench.models.pad_to_multiple(x, {multiple}) and crop with unpad()"
        )


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``(N, C, H, W)`` ``x`` so H and W become multiples of ``multiple``.

    Returns ``(x_padded, (pad_h, pad_w))``. Reflection padding falls back to replicate padding when the
    image is too small to reflect. Undo with :func:`unpad`.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    if mode == "reflect" and (pad_h >= h or pad_w >= w):
        mode = "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (pad_h, pad_w)


def unpad(x: torch.Tensor, pad: tuple[int, int], scale: int = 1) -> torch.Tensor:
    """Crop what :func:`pad_to_multiple` added. ``scale`` divides the padding (e.g. 4 for a latent grid,
    rounding the kept size up)."""
    pad_h, pad_w = pad[0] // scale, pad[1] // scale
    h, w = x.shape[-2:]
    return x[..., : h - pad_h, : w - pad_w]
