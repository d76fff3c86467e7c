"""``records.jsonl`` of a ``degrade`` output folder: one JSON line per written image, keyed by its file name.

A record is appended (and flushed) before its image is written, and an image is deleted before a new record
for it is appended, so an image on disk is always described by the last record of its name, even when the
process is killed at any point. :meth:`RecordLog.compact` then keeps one line per image, the last.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..provenance import atomic_write_bytes


def _key(line: str) -> str | None:
    """The output file name a line records (``None`` for a line that is not a record: kept as it is)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    out = rec.get("output") if isinstance(rec, dict) else None
    return out if isinstance(out, str) else None


class RecordLog:
    """The records of one output folder; :meth:`append` may be called from several threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._file = None
        self.recorded: set[str] = {k for k in map(_key, self._read()) if k is not None}

    def _read(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.path} exists and is not a records file ({type(e).__name__}); move it away "
                             "or choose another --out") from None

    def has(self, output: str) -> bool:
        return output in self.recorded

    def append(self, record: dict[str, Any]) -> None:
        """Append one record line and flush it to the operating system (it survives the process being killed)."""
        line = json.dumps(record) + "\n"
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._file.write(line)
            self._file.flush()
            self.recorded.add(record["output"])

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def compact(self, order: Sequence[str] = ()) -> None:
        """Rewrite the file (atomically) with one line per image, its last record: images not in ``order``
        first, in the order they were first recorded, then those of ``order`` in that order. Lines that are
        not records are kept."""
        self.close()
        lines = self._read()
        last: dict[str, str] = {}
        sequence: list[tuple[str | None, str]] = []
        for line in lines:
            k = _key(line)
            if k is None:
                sequence.append((None, line))
            elif k not in last:
                sequence.append((k, line))
            if k is not None:
                last[k] = line
        late = set(order)
        kept = [line if k is None else last[k] for k, line in sequence if k not in late]
        kept += [last[k] for k in dict.fromkeys(order) if k in last]
        if kept != lines:
            atomic_write_bytes(self.path, "".join(x + "\n" for x in kept).encode("utf-8"))
