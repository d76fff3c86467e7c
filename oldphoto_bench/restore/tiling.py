"""Run a fully convolutional network on images of any size: padding to a multiple, and overlapping tiles.

:func:`run_padded` pads the bottom and right to the network's multiple (reflection), runs once, and crops.
:func:`run_tiled` cuts the image into overlapping tiles, runs each (padded the same way), and blends them into
an output buffer on the image's device (the CPU in the restore pipeline), so the network's activations are
bounded by the tile size whatever the image size.

Tile layout, per axis of length ``L`` (tile ``T``, overlap ``O``, both multiples of ``m = multiple``): tiles
start at ``s_k = k (T - O)`` while the previous one ends before ``L``; tile ``k`` covers ``[s_k, min(s_k + T,
L))``. Starts are multiples of ``m``, so a network whose output shifts with its input by multiples of ``m``
(a U-Net with ``m = 2**depth``) sees the same sampling grid in every tile. Consecutive tiles overlap by
exactly ``O``; the last tile may be shorter than ``T`` (it is padded to ``m`` like the untiled image, so
the bottom/right border is treated exactly as in :func:`run_padded`).

Blend: the output is ``y(p) = sum_k w_k(p) f_k(p) / sum_k w_k(p)`` with separable weights ``w_k(y, x) =
a_k(y) b_k(x)``. Along an axis, a tile's weight is 0 on the ``margin`` pixels next to an edge it shares with
another tile (where a network's output depends on the tile's artificial border), then rises over ``R = O - 2
margin`` pixels with the raised cosine ``r(t) = sin^2(pi (t + 1/2) / (2 R))``, ``t = 0..R-1``, and is 1
elsewhere (also on the image's own borders). In the overlap of tiles ``k`` and ``k+1`` the falling ramp of
``k`` is ``1 - r(t)``, so the weights already sum to 1 (a partition of unity); dividing by the per-axis sums
only removes rounding. Hence: if ``f`` is translation-equivariant by multiples of ``m`` and its receptive
field reaches at most ``margin`` pixels, tiled equals untiled up to float rounding; otherwise neighbouring
tiles are cross-faded smoothly over ``R`` pixels, so no seam shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..models.blocks import pad_to_multiple

TileFn = Callable[..., torch.Tensor]


def _pad(x: torch.Tensor, multiple: int, mode: str) -> torch.Tensor:
    """:func:`pad_to_multiple` that also takes bool masks (padded as floats, then re-thresholded)."""
    if x.dtype == torch.bool:
        return pad_to_multiple(x.float(), multiple, mode)[0] > 0.5
    return pad_to_multiple(x, multiple, mode)[0]


def _check_inputs(image: torch.Tensor, extras: Sequence[torch.Tensor]) -> None:
    if image.dim() != 4:
        raise ValueError(f"image must be (N, C, H, W), got shape {tuple(image.shape)}")
    for i, e in enumerate(extras):
        if e.dim() != 4 or e.shape[0] != image.shape[0] or e.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"extras[{i}] must be (N, C', H, W) = ({image.shape[0]}, C', "
                             f"{image.shape[2]}, {image.shape[3]}) like the image, got {tuple(e.shape)}")


def _call(fn: TileFn, x: torch.Tensor, extras: Sequence[torch.Tensor], multiple: int, pad_mode: str,
          device: torch.device) -> torch.Tensor:
    """Pad ``x`` and ``extras`` to ``multiple``, move them to ``device``, run ``fn``, crop, return on ``x``'s device
    as float32."""
    h, w = x.shape[-2:]
    args = [_pad(t, multiple, pad_mode).to(device) for t in (x, *extras)]
    y = fn(*args)
    if not isinstance(y, torch.Tensor) or y.dim() != 4 or y.shape[0] != x.shape[0] or \
            y.shape[-2:] != args[0].shape[-2:]:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"fn must map (N, C, h, w) to (N, C', h, w) (scale 1); for an input of shape "
                         f"{tuple(args[0].shape)} it returned {got}")
    return y[..., :h, :w].to(device=x.device, dtype=torch.float32)


@torch.no_grad()
def run_padded(fn: TileFn, image: torch.Tensor, extras: Sequence[torch.Tensor] = (), multiple: int = 4,
               pad_mode: str = "reflect", device: str | torch.device | None = None) -> torch.Tensor:
    """``fn`` on the whole image: pad bottom/right to ``multiple`` (``pad_mode``; replicate where the image is
    too small to reflect), call ``fn(x, *extras)`` on ``device`` (default: the image's), crop back.

    ``image`` ``(N, C, H, W)``, ``extras`` ``(N, C_i, H, W)`` each -> ``(N, C', H, W)`` float32 on the image's
    device. Runs without autograd (inference).
    """
    _check_inputs(image, extras)
    return _call(fn, image, extras, multiple, pad_mode, torch.device(device) if device else image.device)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along an axis: ``0, S, 2S, ...`` (``S = tile - overlap``) until a tile reaches ``length``."""
    if length <= tile:
        return [0]
    starts = [0]
    while starts[-1] + tile < length:
        starts.append(starts[-1] + tile - overlap)
    return starts


def blend_weights(length: int, starts: Sequence[int], tile: int, overlap: int, margin: int) -> list[torch.Tensor]:
    """Per-tile 1-D weights along an axis (float32, tile ``k`` has ``min(s_k + tile, length) - s_k`` entries),
    normalised to sum to 1 at every position; see the module docstring for the profile."""
    ramp_len = overlap - 2 * margin
    t = torch.arange(ramp_len, dtype=torch.float64)
    rise = torch.sin(math.pi * (t + 0.5) / (2 * ramp_len)).square()
    total = torch.zeros(length, dtype=torch.float64)
    weights = []
    for k, s in enumerate(starts):
        n = min(s + tile, length) - s
        w = torch.ones(n, dtype=torch.float64)
        if k > 0:  # shares its start with tile k-1
            w[:margin] = 0.0
            w[margin:margin + ramp_len] *= rise
        if k < len(starts) - 1:  # shares its end with tile k+1
            w[n - margin:] = 0.0
            w[n - margin - ramp_len:n - margin] *= rise.flip(0)
        total[s:s + n] += w
        weights.append(w)
    if bool((total <= 0).any()):  # cannot happen with 2 * margin < overlap <= tile / 2; kept as a guard
        raise RuntimeError("tile weights leave pixels uncovered")
    return [(w / total[s:s + w.numel()]).float() for w, s in zip(weights, starts, strict=True)]


def _round_layout(tile: int, overlap: int, multiple: int, margin: int | None) -> tuple[int, int, int]:
    """``tile`` rounded down and ``overlap`` up to multiples of ``multiple``; checks ``2 margin < overlap <= tile /
    2``."""
    tile = (tile // multiple) * multiple
    overlap = math.ceil(overlap / multiple) * multiple
    margin = overlap // 4 if margin is None else margin
    if tile < multiple:
        raise ValueError(f"tile must be at least the multiple {multiple}, got {tile}")
    if not 0 <= 2 * margin < overlap or 2 * overlap > tile:
        raise ValueError(f"need 0 <= 2 * margin < overlap <= tile / 2 (after rounding to multiples of {multiple}); "
                         f"got tile={tile}, overlap={overlap}, margin={margin}")
    return tile, overlap, margin


@torch.no_grad()
def run_tiled(fn: TileFn, image: torch.Tensor, tile: int | None = 512, overlap: int = 64, multiple: int = 4,
              scale: int = 1, out_channels: int | None = None, extras: Sequence[torch.Tensor] = (),
              margin: int | None = None, pad_mode: str = "reflect", device: str | torch.device | None = None,
              on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Apply a fully convolutional ``fn`` to an image of any size in overlapping, blended tiles.

    Args:
        fn: ``fn(x, *extra_tiles)`` maps ``(N, C, h, w)`` (h, w multiples of ``multiple``) to ``(N, C', h, w)``.
            It is called without autograd; put modules in eval mode first (BatchNorm must use running
            statistics, or tiles would be normalised differently).
        image: ``(N, C, H, W)``; any H, W >= 1.
        tile: tile side in pixels (rounded down to a multiple of ``multiple``); ``None``, or an image no larger
            than ``tile`` on both axes, runs once through :func:`run_padded`.
        overlap: pixels shared by neighbouring tiles (rounded up to a multiple of ``multiple``); ``<= tile/2``.
        multiple: each tile (and the untiled image) is padded bottom/right to a multiple of this (reflection).
        scale: output size / input size; only 1 is supported.
        out_channels: ``C'`` if known (checked); otherwise taken from the first tile.
        extras: more ``(N, C_i, H, W)`` tensors (e.g. a mask) cut into the same tiles and passed to ``fn``.
        margin: pixels next to a shared tile edge that get weight 0 (default ``overlap // 4``); ``2 margin <
            overlap``. Exactness needs ``fn``'s receptive field radius <= ``margin``.
        device: where ``fn`` runs (default: the image's); tiles go there one by one.
        on_tile: ``on_tile(done, total)`` after each tile (a progress bar).

    Returns ``(N, C', H, W)`` float32 on the image's device. Besides the image and this output (plus a one-row
    and one-column weight vector), memory holds one tile of ``fn``'s inputs, activations and output.
    """
    if scale != 1:
        raise NotImplementedError(f"run_tiled supports scale=1 only, got {scale}")
    _check_inputs(image, extras)
    n, _, h, w = image.shape
    dev = torch.device(device) if device else image.device
    if tile is None or (h <= tile and w <= tile):
        out = _call(fn, image, extras, multiple, pad_mode, dev)
        if out_channels is not None and out.shape[1] != out_channels:
            raise ValueError(f"fn returned {out.shape[1]} channels, expected out_channels={out_channels}")
        if on_tile is not None:
            on_tile(1, 1)
        return out
    tile, overlap, margin = _round_layout(tile, overlap, multiple, margin)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wy = blend_weights(h, ys, tile, overlap, margin)
    wx = blend_weights(w, xs, tile, overlap, margin)
    out = None if out_channels is None else torch.zeros(n, out_channels, h, w, device=image.device)
    total, done = len(ys) * len(xs), 0
    for y0, a in zip(ys, wy, strict=True):
        for x0, b in zip(xs, wx, strict=True):
            win = (slice(None), slice(None), slice(y0, y0 + a.numel()), slice(x0, x0 + b.numel()))
            y = _call(fn, image[win], [e[win] for e in extras], multiple, pad_mode, dev)
            if out is None:
                out = torch.zeros(n, y.shape[1], h, w, device=image.device)
            elif y.shape[1] != out.shape[1]:
                raise ValueError(f"fn returned {y.shape[1]} channels for a tile, expected {out.shape[1]}")
            weight = (a.to(image.device)[:, None] * b.to(image.device)[None, :])
            out[win].add_(y * weight)
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    assert out is not None
    return out
