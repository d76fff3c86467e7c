"""Which data sets are for training and which are for testing, and where the developers' shared data lives.

The split is a contract: models are trained on the ``TRAIN_SETS`` (clean photos, degraded synthetically),
the ``FACE_TRAIN_SETS`` and the real old photos in ``OLD_PHOTO_SETS``; Kodak24, FFHQ-10 and the photos that
ship inside scikit-image (``"embedded"``) are test sets and are never trained on. Training code calls
:func:`check_not_test_set` on every data spec it is given.

Names are paths relative to the shared data root (``shared/data`` in the developers' checkout, see
``datasets/README.md``); users without it pass their own folders.
"""

from __future__ import annotations

import os
from pathlib import Path

# Clean photos with ground truth used to synthesize (degraded, clean) training pairs.
TRAIN_SETS: tuple[str, ...] = ("clean/bsds500", "clean/cbsd68", "clean/mcmaster", "clean/set14")
# Unaligned real face photos (face detection / face-crop training; no degradation ground truth).
FACE_TRAIN_SETS: tuple[str, ...] = ("faces/deepface",)
# Real old photos without ground truth: the real-photo domain R of the paper's VAE1 (and qualitative checks).
OLD_PHOTO_SETS: tuple[str, ...] = ("old/bopbtl/old", "old/bopbtl/old_w_scratch")
# Held-out test sets: never trained on.
TEST_SETS: tuple[str, ...] = ("clean/kodak24", "faces/ffhq10", "embedded")
ALL_SETS: tuple[str, ...] = TRAIN_SETS + FACE_TRAIN_SETS + OLD_PHOTO_SETS + TEST_SETS

ENV_SHARED_DATA = "OLDPHOTO_SHARED_DATA"


def shared_data_root() -> Path | None:
    """The developers' shared data folder, or ``None`` where there is none (users normally have none).

    Looks at ``$OLDPHOTO_SHARED_DATA`` first, then ``../shared/data`` next to the repository checkout.
    """
    env = os.environ.get(ENV_SHARED_DATA)
    if env:
        p = Path(env).expanduser()
        return p.resolve() if p.is_dir() else None
    repo = Path(__file__).resolve().parents[2]  # oldphoto_bench/data/splits.py -> repository root
    p = repo.parent / "shared" / "data"
    return p.resolve() if p.is_dir() else None


def shared_set_path(name: str) -> Path:
    """The folder of a named set (e.g. ``"clean/kodak24"``) under :func:`shared_data_root`.

    Raises ``KeyError`` for an unknown name and ``FileNotFoundError`` when the shared data is absent.
    """
    if name not in ALL_SETS or name == "embedded":
        valid = ", ".join(s for s in ALL_SETS if s != "embedded")
        raise KeyError(f"unknown shared data set {name!r}; valid names: {valid}")
    root = shared_data_root()
    if root is None:
        raise FileNotFoundError(
            f"no shared data folder: set ${ENV_SHARED_DATA} or put it at ../shared/data next to the checkout"
        )
    path = root / name
    if not path.is_dir():
        raise FileNotFoundError(f"shared data set {name!r} not found at {path}")
    return path


def which_test_set(spec_part: str) -> str | None:
    """The test set that one data spec (no commas) points at, or ``None``.

    ``"embedded"`` is a test set. A folder or file (also as ``hf:<folder>``) counts when it lies inside a
    test set's folder under the shared root or contains it, when its path ends with a test set's relative
    path (``.../clean/kodak24``), or when it holds a folder named like one (``<folder>/kodak24``), so that
    copies of a test set elsewhere are caught too. Hub ids are not checked.
    """
    part = spec_part.strip()
    if part == "embedded":
        return "embedded"
    if part.startswith("hf:"):
        folder = part[3:].partition(":")[0]
        return which_test_set(folder) if folder and Path(folder).expanduser().exists() else None
    p = Path(part).expanduser()
    resolved = p.resolve() if p.exists() else p.absolute()
    root = shared_data_root()
    for name in TEST_SETS:
        if name == "embedded":
            continue
        test_dir = root / name if root is not None else None
        if test_dir is not None and (resolved.is_relative_to(test_dir) or test_dir.is_relative_to(resolved)):
            return name  # inside the test set, or a folder that contains it
        tail = Path(name).parts
        parts = resolved.parts
        # the path itself or any of its parents ends with e.g. ("clean", "kodak24")
        for end in range(len(parts), len(tail) - 1, -1):
            if parts[end - len(tail) : end] == tail:
                return name
        # a folder holding a copy: <folder>/clean/kodak24 or <folder>/kodak24
        if resolved.is_dir() and any((resolved / Path(*tail[k:])).is_dir() for k in range(len(tail))):
            return name
    return None


def check_not_test_set(spec: str) -> None:
    """Raise ``ValueError`` when any comma-separated part of a data spec is a test set (see ``TEST_SETS``)."""
    hits = [(part.strip(), name) for part in spec.split(",") if part.strip() and (name := which_test_set(part))]
    if hits:
        shown = "; ".join(f"{part!r} is test set {name!r}" for part, name in hits)
        raise ValueError(f"refusing to train on a test set: {shown} (test sets: {', '.join(TEST_SETS)})")
