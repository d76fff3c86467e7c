"""Contact sheets and image grids (PIL only, so they render anywhere without a display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .imageio import to_uint8


def _fit(img: np.ndarray, cell: int) -> Image.Image:
    pil = Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
    pil = pil.convert("RGB")
    pil.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    return pil


def contact_sheet(rows: Sequence[Sequence[torch.Tensor]], col_labels: Sequence[str] | None = None,
                  row_labels: Sequence[str] | None = None, cell: int = 256, pad: int = 4) -> Image.Image:
    """Grid of images; each row is a list of (1, C, H, W) tensors in [0, 1] (C = 1 or 3).

    Images are shrunk to fit ``cell x cell`` keeping their aspect; labels are drawn above columns and at the
    left of rows with PIL's default font.
    """
    ncol = max(len(r) for r in rows)
    top = 18 if col_labels else 0
    left = 110 if row_labels else 0
    sheet = Image.new("RGB", (left + ncol * (cell + pad) + pad, top + len(rows) * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for j, lab in enumerate(col_labels or []):
        draw.text((left + pad + j * (cell + pad), 3), str(lab), fill="black")
    for i, row in enumerate(rows):
        y = top + pad + i * (cell + pad)
        if row_labels:
            draw.text((4, y + cell // 2 - 6), str(row_labels[i])[:18], fill="black")
        for j, t in enumerate(row):
            x = left + pad + j * (cell + pad)
            tile = _fit(to_uint8(t), cell)
            sheet.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
    return sheet


def save_sheet(sheet: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def mask_overlay(image: torch.Tensor, mask: torch.Tensor, color: Sequence[float] = (1.0, 0.0, 0.0),
                 alpha: float = 0.6) -> torch.Tensor:
    """Tint the masked pixels of (1, 3, H, W) ``image`` with ``color``; mask (1, 1, H, W) in {0, 1}."""
    c = torch.tensor(color, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    a = alpha * mask.to(image.dtype)
    return image * (1 - a) + c * a


def plot_grid(images: Sequence[torch.Tensor], titles: Sequence[str] | None = None, ncols: int = 4,
              size: float = 3.0, suptitle: str | None = None):
    """Matplotlib figure with one (1, C, H, W) image per axis; returns the figure (for notebooks)."""
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            arr = to_uint8(images[k])
            ax.imshow(arr.squeeze(-1) if arr.shape[-1] == 1 else arr, cmap="gray" if arr.shape[-1] == 1 else None)
            if titles:
                ax.set_title(str(titles[k]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
