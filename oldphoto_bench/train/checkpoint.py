"""Training checkpoints: one ``last.pt`` per stage, written atomically, loaded without unpickling code.

Layout (a plain dict of tensors, numbers, strings, lists and dicts, so ``torch.load(weights_only=True)``
reads it)::

    {"format": 1, "stage": "vae-a", "step": 1200, "elapsed": 812.5,
     "config": {...resolved config...},
     "specs":  {"vae": {"type": "vae", ...constructor arguments...}, "d_image": {...}, ...},
     "models": {"vae": state_dict, ...}, "optimizers": {...}, "scaler": {...},
     "streams": {"synthetic": {"epoch": 3, "offset": 7}, ...}, "generators": {"noise": ByteTensor},
     "extra": {...}}
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..provenance import atomic_write_bytes

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "last.pt"


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """``torch.save`` into memory, then a temporary file renamed over ``path``: a crash never leaves half a file."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = load_tensors(path, map_location, what="checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an oldphoto-bench training checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def load_tensors(path: str | Path, map_location: str | torch.device = "cpu", what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings and containers only, so that loading
    never runs code. A file holding other pickled objects is refused with our own ``ValueError`` (it is
    not loaded, and we never suggest ``weights_only=False``); other read errors name the file too."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        detail = f" ({found.group(1)})" if found else ""
        raise ValueError(f"{what} {path} holds pickled Python objects{detail} besides tensors and plain values; "
                         "an untrusted pickle can run code when loaded, so it was not loaded. Use a file written "
                         "by oldphoto-bench (train, ship) or one holding a plain state_dict") from None
    except Exception as e:  # truncated or foreign files
        text = str(e).strip().splitlines()
        raise ValueError(f"cannot read {what} {path}: {type(e).__name__}: {text[0] if text else ''}") from None


def generator_states(generators: Mapping[str, torch.Generator]) -> dict[str, torch.Tensor]:
    return {name: g.get_state() for name, g in generators.items()}


def restore_generators(generators: Mapping[str, torch.Generator], states: Mapping[str, torch.Tensor]) -> None:
    missing = sorted(set(generators) - set(states))
    if missing:
        raise ValueError(f"checkpoint lacks generator state(s) {missing}")
    for name, g in generators.items():
        g.set_state(states[name].cpu() if g.device.type == "cpu" else states[name])
