"""What the file-writing commands share so that nothing the user had is lost: inputs are never among the
outputs, and the JSON reports of earlier runs into the same folder are merged, not replaced."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .inputs import InputFile


def refuse_inputs_among_outputs(files: Sequence[InputFile], outputs: Iterable[Path]) -> None:
    """Raise ``ValueError`` naming the first input that is one of ``outputs``.

    Files are compared by identity (device and inode, symlinks followed), not by name, so an input reached
    through a link or another spelling of its path is found too. Outputs that do not exist yet are no input."""
    ids: dict[tuple[int, int], Path] = {}
    for f in files:
        try:
            st = os.stat(f.path)
        except OSError:
            continue  # unreadable inputs fail later with their own message
        ids[(st.st_dev, st.st_ino)] = f.path
    for p in outputs:
        try:
            st = os.stat(p)
        except OSError:
            continue
        hit = ids.get((st.st_dev, st.st_ino))
        if hit is not None:
            raise ValueError(f"input {hit} would be written over by the output {p}; choose another --out")


def load_entries(path: Path, key: str) -> list[Any]:
    """The list ``key`` of an existing JSON report written by an earlier run (``[]`` when there is none).

    Raises ``ValueError`` when ``path`` exists but is not such a report, so that it is never replaced."""
    from ..provenance import read_own_json

    saved = read_own_json(path, "a report of this command", lambda o: isinstance(o.get(key, []), list))
    if saved is None:
        return []
    return list(saved.get(key, []))


def merge_entries(old: Sequence[dict], new: Sequence[dict], key: Callable[[dict], Any]) -> list[dict]:
    """Earlier entries in their order, each replaced by this run's entry with the same key; new keys after."""
    fresh = {key(e): e for e in new}  # the last entry of a key wins
    merged, seen = [], set()
    for e in [*old, *new]:
        k = key(e)
        if k not in seen:
            seen.add(k)
            merged.append(fresh.get(k, e))
    return merged
