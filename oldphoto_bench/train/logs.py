"""Run logs of a stage: ``log.csv`` (one row per logged step), TensorBoard events, ``run.log`` notes.

Only the main process writes (``enabled=False`` elsewhere). Resuming keeps the rows up to the checkpoint's
step and drops those a killed run logged after its last save, so the CSV reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from pathlib import Path

from ..provenance import atomic_write_bytes

FIXED_COLUMNS = ("step", "epoch", "lr", "seconds", "sec_per_step")


class RunLog:
    def __init__(self, stage_dir: Path, enabled: bool = True, resume_step: int | None = None,
                 tensorboard: bool = True):
        self.dir = Path(stage_dir)
        self.enabled = enabled
        self.csv_path = self.dir / "log.csv"
        self.columns: list[str] | None = None
        self.writer = None
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.csv_path.unlink(missing_ok=True)
            (self.dir / "run.log").unlink(missing_ok=True)
        else:
            self._truncate(resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # tensorboard is optional at run time
                self.note(f"TensorBoard logging off: cannot import it ({e})")
            else:
                # purge_step hides events a killed run wrote after its last checkpoint
                purge = None if resume_step is None else resume_step + 1
                self.writer = SummaryWriter(str(self.dir / "tb"), purge_step=purge)

    def _truncate(self, step: int) -> None:
        if not self.csv_path.is_file():
            return
        with open(self.csv_path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        self.columns = rows[0]
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        text = "".join(",".join(r) + "\n" for r in kept)
        atomic_write_bytes(self.csv_path, text.encode())

    def note(self, line: str) -> None:
        """A line for the user (stderr) and for ``run.log``."""
        if not self.enabled:
            return
        print(line, file=sys.stderr)
        with open(self.dir / "run.log", "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")

    def row(self, values: Mapping[str, float | int]) -> None:
        """Append one CSV row (full float precision) and the same scalars to TensorBoard."""
        if not self.enabled:
            return
        if self.columns is None:
            losses = [k for k in values if k not in FIXED_COLUMNS]
            self.columns = [*FIXED_COLUMNS, *losses]
            with open(self.csv_path, "w", newline="") as f:
                f.write(",".join(self.columns) + "\n")
        extra = sorted(set(values) - set(self.columns))
        if extra:
            raise ValueError(f"log columns changed mid-run: new {extra}")
        with open(self.csv_path, "a", newline="") as f:
            f.write(",".join(repr(values[c]) if c in values else "" for c in self.columns) + "\n")
        if self.writer is not None:
            step = int(values["step"])
            for k, v in values.items():
                if k not in ("step", "epoch"):
                    self.writer.add_scalar(k if k in FIXED_COLUMNS else f"loss/{k}", float(v), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None
