"""Restoring photos of any size: padding and seamless, memory-bounded tiling (:mod:`.tiling`)."""

from .tiling import blend_weights, run_padded, run_tiled, tile_starts

__all__ = ["blend_weights", "run_padded", "run_tiled", "tile_starts"]
