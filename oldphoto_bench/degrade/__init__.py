"""Seeded, replayable synthesis of old-photo degradations with pixel-exact damage masks."""

from . import ageing, structured, unstructured  # noqa: F401  (register the ops)
from .base import OPS, DegradationOp
from .presets import load_preset, preset_names
from .synthesizer import Degraded, Synthesizer

__all__ = ["OPS", "DegradationOp", "Degraded", "Synthesizer", "load_preset", "preset_names"]
