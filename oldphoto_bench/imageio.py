"""Image conversions and file I/O: the one place where pixels enter or leave the library's convention.

Convention inside the library: ``torch.float32``, NCHW, RGB, values in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch

# ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` and OpenCV's RGB2GRAY use.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC array (uint8, uint16, bool or float in [0, 1]) -> (1, 3, H, W) float32 RGB in [0, 1].

    One channel is replicated to three; a fourth (alpha) channel is not accepted here (flatten it first).
    """
    a = np.asarray(array)
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        x = a.astype(np.float32) / 65535.0
    elif a.dtype == np.bool_:
        x = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        x = a.astype(np.float32)
    else:
        raise TypeError(f"unsupported array dtype {a.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ValueError(f"expected HxW, HxWx1 or HxWx3, got shape {a.shape}")
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].clamp_(0.0, 1.0)


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) tensor -> HxWxC float32 array (on CPU)."""
    t = image.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_numpy takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"expected (1, C, H, W) or (C, H, W), got {tuple(image.shape)}")
    return t.float().cpu().numpy().transpose(1, 2, 0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) / (C, H, W) float in [0, 1] -> HxWxC uint8, rounding to nearest."""
    return (np.clip(to_numpy(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def rgb_to_luma(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma, Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601)."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image * w).sum(dim=1, keepdim=True)


def gray_to_rgb(gray: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 3, H, W) by replicating the channel."""
    return gray.expand(-1, 3, -1, -1).contiguous()
