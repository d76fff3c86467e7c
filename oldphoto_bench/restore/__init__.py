"""Restoring photos of any size: the pipeline (:class:`Restorer`, :mod:`.restorer`), exact layer-by-layer
whole-image inference for the instance-normalised networks (:mod:`.layerwise`), and padding and seamless,
memory-bounded tiling for the others (:mod:`.tiling`)."""

from .layerwise import DEFAULT_BAND_ELEMENTS, LayerwiseRunner
from .restorer import (
    DEFAULT_CHECKPOINTS,
    MissingCheckpointsError,
    Restorer,
    RestoreResult,
    check_checkpoints,
    default_checkpoints,
    required_stages,
)
from .tiling import blend_weights, run_padded, run_tiled, tile_starts

__all__ = [
    "DEFAULT_BAND_ELEMENTS", "DEFAULT_CHECKPOINTS", "LayerwiseRunner", "MissingCheckpointsError",
    "RestoreResult", "Restorer", "blend_weights", "check_checkpoints", "default_checkpoints", "required_stages",
    "run_padded", "run_tiled", "tile_starts",
]
