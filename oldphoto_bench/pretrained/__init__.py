"""Trained checkpoints shipped inside the package: the default of ``restore``, ``bench`` and ``demo``.

    oldphoto_bench/pretrained/tiny/        a runs folder (same layout as ``oldphoto-bench train --out``)
      vae-a/last.pt  vae-a/provenance.json
      vae-b/...  mapping/...  mapping-no-pn/...  scratch/...  face/...  baseline-pix2pix/...  baseline-unet/...

Each ``last.pt`` is a training checkpoint stripped to what inference needs (stage, config, network specs
and float32 weights of the inference networks; no discriminators, optimizers or data-stream state), so
the loaders of :mod:`oldphoto_bench.train.artifacts` read it unchanged. ``provenance.json`` says what it
was trained on and how (data, resolved config, seed, command, steps, time, git revision, versions) and
holds the file's sha256.

    oldphoto-bench ship --list                 what is shipped
    oldphoto-bench ship RUNS                   export trained runs into the package
    oldphoto-bench ship --retrain runs/tiny    train every stage with the tiny recipe, then export

This module imports nothing heavy: the restore CLI reads :data:`PRETRAINED_DIR` for its help text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent / "tiny"
PROVENANCE_NAME = "provenance.json"
CHECKPOINT_FILE = "last.pt"  # = train.checkpoint.CHECKPOINT_NAME (not imported: that module loads torch)
RETRAIN_RUNS = "runs/tiny"
RETRAIN_COMMAND = f"oldphoto-bench ship --retrain {RETRAIN_RUNS}"
SHIPPED_DESCRIPTION = "the checkpoints shipped with the package (oldphoto_bench/pretrained/tiny)"


def is_shipped(runs: str | Path) -> bool:
    """Whether ``runs`` is the package's shipped folder."""
    try:
        return Path(runs).resolve() == PRETRAINED_DIR
    except OSError:
        return False


def shipped_stages(dest: str | Path = PRETRAINED_DIR) -> list[str]:
    """Run folders under ``dest`` that hold a ``last.pt``, sorted."""
    dest = Path(dest)
    if not dest.is_dir():
        return []
    return sorted(p.parent.name for p in dest.glob(f"*/{CHECKPOINT_FILE}") if p.is_file())


def missing_shipped_message(missing: Iterable[str | Path], dest: str | Path = PRETRAINED_DIR) -> str:
    """The error for missing shipped files: which files, and the one command that recreates them."""
    dest = Path(dest)
    names = []
    for m in missing:
        p = Path(m)
        names.append(p.relative_to(dest).as_posix() if p.is_absolute() and p.is_relative_to(dest) else str(p))
    return (
        f"missing shipped checkpoint file(s) in {dest}: {', '.join(names)}.\n"
        f"  Recreate every shipped checkpoint with `{RETRAIN_COMMAND}` (needs the shared training data, "
        "about 3 hours on 2 CPU cores; `oldphoto-bench ship --help`),\n"
        "  or pass --checkpoints RUNS, a folder written by `oldphoto-bench train`."
    )


__all__ = [
    "CHECKPOINT_FILE", "PRETRAINED_DIR", "PROVENANCE_NAME", "RETRAIN_COMMAND", "RETRAIN_RUNS",
    "SHIPPED_DESCRIPTION", "is_shipped", "missing_shipped_message", "shipped_stages",
]
