"""Degradation presets: YAML files in ``oldphoto_bench/configs/presets/`` or a user's own file.

``unstructured`` reproduces the released code's operations and probabilities exactly; ``paper`` adds the
structured defects and ageing that the paper describes; ``light`` and ``heavy`` bracket it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import load_config, shipped_configs


def preset_names() -> list[str]:
    return shipped_configs("presets")


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """Load a shipped preset by name or a YAML preset by path (see :mod:`.synthesizer` for the schema)."""
    spec = load_config(name_or_path, "presets")
    if "stages" not in spec:
        raise ValueError(f"preset {name_or_path} has no 'stages' list")
    spec.setdefault("name", Path(str(name_or_path)).stem)
    return spec
