"""Turning command-line INPUT arguments (files and folders) into a list of image files."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..imageio import is_image_file


@dataclass
class InputFile:
    path: Path
    stem: str  # unique output stem within one run


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Files are taken as given (bad ones fail later, with their name); folders are searched recursively for
    image files in sorted order, non-image files skipped with one warning line each.

    Returns (files, problems) where problems are (input, message) pairs for inputs that do not exist.
    Output stems are made unique: a second ``x.png`` (from another folder or as ``x.jpg``) becomes ``x_2``.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                if any(part.startswith(".") for part in f.relative_to(p).parts):
                    continue  # hidden files and folders (.ipynb_checkpoints, .DS_Store, ...)
                if is_image_file(f):
                    files.append(f)
                else:
                    print(f"skipping {f}: not an image file", file=sys.stderr)
        elif p.is_file():
            files.append(p)
        else:
            problems.append((str(raw), f"{raw}: no such file or folder"))
    out: list[InputFile] = []
    taken: set[str] = set()  # output names already claimed: every stem claims STEM and STEM_mask
    seen: set[Path] = set()
    for f in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        stem, n = f.stem, 2
        while stem in taken or f"{stem}_mask" in taken:
            stem, n = f"{f.stem}_{n}", n + 1
        taken.update((stem, f"{stem}_mask"))
        out.append(InputFile(f, stem))
    return out, problems
