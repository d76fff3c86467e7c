"""Turning command-line INPUT arguments (files and folders) into a list of image files."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..imageio import is_image_file


@dataclass
class InputFile:
    path: Path
    stem: str  # unique output stem within one run


def _dangling(path: Path) -> str:
    return f"{path}: cannot read: it is a link to {os.readlink(path)}, which does not exist"


def _scan(folder: Path, files: list[Path], problems: list[tuple[str, str]]) -> None:
    """Append the image files under ``folder`` (recursively, sorted by name at each level) to ``files``.

    Hidden entries are skipped silently, other non-image files with one warning line each; a folder that
    cannot be listed and a link to nothing become ``problems`` naming them. Linked folders are not entered
    (no loops)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        problems.append((str(folder), f"{folder}: cannot read folder ({e.strerror or e}); its files were skipped"))
        return
    for e in entries:
        if e.name.startswith("."):
            continue  # hidden files and folders (.ipynb_checkpoints, .DS_Store, ...)
        path = Path(e.path)
        try:
            if e.is_dir(follow_symlinks=False):
                _scan(path, files, problems)
                continue
            if e.is_symlink() and not os.path.exists(path):
                problems.append((str(path), _dangling(path)))
                continue
            is_file = e.is_file()
        except OSError as err:
            problems.append((str(path), f"{path}: cannot read: {err.strerror or err}"))
            continue
        if not is_file:
            continue  # a linked folder, a socket, ...
        if is_image_file(path):
            files.append(path)
        else:
            print(f"skipping {path}: not an image file", file=sys.stderr)


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Files are taken as given (bad ones fail later, with their name); folders are searched recursively for
    image files in sorted order, non-image files skipped with one warning line each.

    Returns (files, problems) where problems are (input, message) pairs for what cannot be read at all: an
    input that does not exist, a folder that cannot be listed, a link to nothing.
    Output stems are made unique: a second ``x.png`` (from another folder or as ``x.jpg``) becomes ``x_2``.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for raw in inputs:
        p = Path(raw)
        try:
            is_dir = stat.S_ISDIR(os.stat(p).st_mode)
        except FileNotFoundError:
            problems.append((str(raw), _dangling(p) if os.path.islink(p) else f"{raw}: no such file or folder"))
            continue
        except OSError:
            is_dir = False  # e.g. a folder on its path is not searchable: loading it says so, naming it
        if is_dir:
            _scan(p, files, problems)
        else:
            files.append(p)
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
