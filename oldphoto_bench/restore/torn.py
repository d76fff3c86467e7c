"""Torn-piece detection on the whole photo (the ``torn`` training stage's network), for the restore pipeline.

The network sees the photo shrunk to a ``size x size`` thumbnail (area average), so a torn-off corner tens of
pixels wide becomes a few thumbnail pixels whose jagged border and paper colour it can judge against the
whole photo::

    p = up(sigmoid(U(thumbnail(x))))      (1, 1, H, W) in [0, 1], ``up``: bilinear to the photo's size
    mask = p >= threshold                 (the threshold stored in the checkpoint)

The pipeline unites this mask with the scratch detector's (:class:`~.restorer.Restorer`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.colour import thumbnail


@torch.no_grad()
def torn_probability(net: torch.nn.Module, image: torch.Tensor, size: int, device: str = "cpu") -> torch.Tensor:
    """Torn-piece probability ``(1, 1, H, W)`` in [0, 1] (CPU) of ``image`` ``(1, 3, H, W)`` in [0, 1].

    ``size``: the thumbnail side the network was trained at (the checkpoint's ``extra.size``).
    """
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"torn_probability takes one RGB image (1, 3, H, W), got {tuple(image.shape)}")
    small = thumbnail(image.float().cpu(), int(size)).to(device)
    prob = net.predict_proba(small).float().cpu()
    return F.interpolate(prob, size=image.shape[-2:], mode="bilinear", align_corners=False).clamp(0.0, 1.0)
