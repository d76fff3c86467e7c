"""Image sources: indexable, lazily loading collections of photos.

Every source has ``len(src)``, ``src.names()`` (stable, unique, cheap: no pixels are decoded) and
``src[i] -> Sample`` whose ``image`` is ``(1, 3, H, W)`` float32 RGB in ``[0, 1]``. Pixels are decoded only
when an item is accessed, so a source is cheap to build and safe to hand to DataLoader workers.

Forms accepted by :func:`open_source`::

    embedded                    photos shipped inside scikit-image (no download)
    /path/to/folder             every image file under the folder, recursively, sorted by relative path
    /path/to/photo.jpg          one image file
    hf:<hub id or folder>[:split]   a Hugging Face ``datasets`` data set (see :mod:`.hf`)
    a,b,c                       any of the above, concatenated in that order

Skipped files are reported on the ``logging.getLogger("oldphoto_bench")`` logger, one warning line each.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import operator
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import imageio

logger = logging.getLogger("oldphoto_bench")

SPEC_FORMS = (
    "'embedded' (photos shipped with scikit-image), a folder path, an image file path, "
    "'hf:<hub id or local folder>[:split]', or a comma-separated list of these"
)


class SourceSpecError(ValueError):
    """A data spec that names nothing we can open."""


@dataclass
class Sample:
    """One photo: ``image`` (1, 3, H, W) float32 RGB in [0, 1], a stable ``name`` and an ``info`` dict.

    ``info`` always holds ``source`` (the source's label), ``index``, ``size`` ([H, W]) and ``was_gray``
    (the stored photo had one channel, so its three channels are equal).
    """

    image: torch.Tensor
    name: str
    info: dict[str, Any] = field(default_factory=dict)


def _info_dict(info: Any) -> dict[str, Any]:
    """imageio's ImageInfo (a dataclass or mapping) -> a plain dict."""
    if info is None:
        return {}
    if dataclasses.is_dataclass(info) and not isinstance(info, type):
        return dataclasses.asdict(info)
    if isinstance(info, Mapping):
        return dict(info)
    return dict(vars(info))


class Source:
    """Base class: subclasses implement ``__len__``, ``names`` and ``load(i)`` for ``0 <= i < len``."""

    label: str = "source"

    def __len__(self) -> int:
        raise NotImplementedError

    def names(self) -> list[str]:
        raise NotImplementedError

    def load(self, index: int) -> Sample:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for {self.label!r} with {n} images")
        return self.load(i)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self.load(i)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r}, {len(self)} images)"


# ---- photos shipped inside scikit-image ---------------------------------------------------------------------
# (name, skimage.data function). Only photos whose files are inside the scikit-image wheel (checked offline
# with scikit-image 0.26): others (eagle, lily, ...) need a pooch download and are left out. Licences are in
# each function's docstring: astronaut, hubble_deep_field (NASA) and rocket (SpaceX) are public domain, camera,
# chelsea and coffee are CC0, coins has no known restrictions, motorcycle is from the Middlebury 2014 stereo set.
EMBEDDED_PHOTOS: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut"),
    ("camera", "camera"),  # grayscale
    ("chelsea", "chelsea"),
    ("coffee", "coffee"),
    ("coins", "coins"),  # grayscale
    ("hubble_deep_field", "hubble_deep_field"),
    ("motorcycle_left", "stereo_motorcycle"),  # left view of the stereo pair
    ("rocket", "rocket"),
)


class EmbeddedSource(Source):
    """The real photos that ship inside scikit-image (no download), in a fixed order with stable names.

    Args:
        names: a subset of :data:`EMBEDDED_PHOTOS` names to keep (in the given order); ``None`` keeps all.
    """

    label = "embedded"

    def __init__(self, names: Sequence[str] | None = None):
        table = dict(EMBEDDED_PHOTOS)
        if names is None:
            self._names = [n for n, _ in EMBEDDED_PHOTOS]
        else:
            unknown = [n for n in names if n not in table]
            if unknown:
                raise KeyError(f"unknown embedded photo(s) {unknown}; valid names: {', '.join(table)}")
            self._names = list(names)
        self._functions = [table[n] for n in self._names]

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> list[str]:
        return list(self._names)

    def load(self, index: int) -> Sample:
        import skimage.data

        fn = self._functions[index]
        array = getattr(skimage.data, fn)()
        if isinstance(array, tuple):  # stereo_motorcycle -> (left, right, disparity)
            array = array[0]
        image = imageio.to_tensor(array)
        info = {"source": self.label, "index": index, "origin": f"skimage.data.{fn}",
                "size": list(image.shape[-2:]), "was_gray": array.ndim == 2}
        return Sample(image, self._names[index], info)


# ---- files and folders --------------------------------------------------------------------------------------
# Documentation that data folders carry next to their images (our shared sets all have SOURCES.md and
# LICENSE.txt): skipped quietly instead of warning on every use.
_DOC_PREFIXES = ("readme", "sources", "license", "licence", "copying")


class FileListSource(Source):
    """A fixed list of image files. Names are paths relative to ``root`` (POSIX style) or file names.

    A file that cannot be decoded raises :class:`oldphoto_bench.imageio.ImageError` naming it when accessed.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], root: str | os.PathLike | None = None,
                 label: str | None = None, max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS):
        self.paths = [Path(p) for p in paths]
        self.root = Path(root) if root is not None else None
        self.max_pixels = max_pixels
        self.label = label or (str(self.root) if self.root else ",".join(str(p) for p in self.paths))
        if self.root is not None:
            self._names = [p.relative_to(self.root).as_posix() for p in self.paths]
        else:
            self._names = [p.name for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def names(self) -> list[str]:
        return list(self._names)

    def load(self, index: int) -> Sample:
        path = self.paths[index]
        image, image_info = imageio.load_image(path, max_pixels=self.max_pixels)  # ImageError names the file
        info = _info_dict(image_info)
        info.update({"source": self.label, "index": index, "path": str(path), "size": list(image.shape[-2:])})
        info.setdefault("was_gray", False)
        return Sample(image, self._names[index], info)


def scan_images(root: Path, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` sorted by relative POSIX path; other files are skipped with one warning each.

    Hidden files and folders (``.name``) and documentation files (README, SOURCES, LICENSE, COPYING) are
    skipped silently.
    """
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [] if not recursive else sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            rel = path.relative_to(root).as_posix()
            if fname.startswith(".") or fname.lower().startswith(_DOC_PREFIXES):
                logger.debug("skipping %s", path)
            elif imageio.is_image_file(path):
                found.append((rel, path))
            else:
                logger.warning("skipping non-image file %s", path)
    found.sort(key=lambda t: t[0])
    return [p for _, p in found]


class FolderSource(FileListSource):
    """All image files under ``root`` (recursively by default), sorted by path relative to ``root``.

    Raises ``FileNotFoundError`` when ``root`` is not a folder and ``ValueError`` when it holds no images.
    """

    def __init__(self, root: str | os.PathLike, recursive: bool = True,
                 max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS):
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        paths = scan_images(root, recursive=recursive)
        if not paths:
            exts = ", ".join(sorted(imageio.IMAGE_EXTENSIONS))
            raise ValueError(f"no image files in {root}{'' if recursive else ' (not recursive)'}; "
                             f"recognised extensions: {exts}")
        self.recursive = recursive
        super().__init__(paths, root=root, label=str(root), max_pixels=max_pixels)


# ---- concatenation ------------------------------------------------------------------------------------------
class ConcatSource(Source):
    """Several sources one after the other.

    Names are the parts' names; if two parts share a name, every name is prefixed with the last component of
    its part's label, e.g. ``old/a.png`` and ``old_w_scratch/a.png`` (``<k>:<label>/...`` when those collide
    too), so names stay unique and depend only on the spec.
    """

    def __init__(self, sources: Sequence[Source]):
        if not sources:
            raise ValueError("ConcatSource needs at least one source")
        self.sources = list(sources)
        self.label = ",".join(s.label for s in self.sources)
        self._ends = []
        total = 0
        for s in self.sources:
            total += len(s)
            self._ends.append(total)
        parts = [s.names() for s in self.sources]
        flat = [n for p in parts for n in p]
        if len(set(flat)) != len(flat):
            labels = [Path(s.label).name or s.label for s in self.sources]
            if len(set(labels)) != len(labels):
                labels = [f"{k}:{lab}" for k, lab in enumerate(labels)]
            parts = [[f"{lab}/{n}" for n in p] for lab, p in zip(labels, parts, strict=True)]
        self._names = [n for p in parts for n in p]

    def __len__(self) -> int:
        return self._ends[-1]

    def names(self) -> list[str]:
        return list(self._names)

    def load(self, index: int) -> Sample:
        k = bisect.bisect_right(self._ends, index)
        start = self._ends[k - 1] if k else 0
        sample = self.sources[k].load(index - start)
        info = dict(sample.info)
        info["part_index"] = info.get("index", index - start)
        info["index"] = index
        return Sample(sample.image, self._names[index], info)


# ---- specs --------------------------------------------------------------------------------------------------
def _open_one(part: str, cache_dir: str | os.PathLike | None, max_pixels: int | None) -> Source:
    if part == "embedded":
        return EmbeddedSource()
    if part.startswith("hf:"):
        from .hf import HFSource

        return HFSource(part, cache_dir=cache_dir)
    path = Path(part).expanduser()
    if path.is_dir():
        return FolderSource(path, max_pixels=max_pixels)
    if path.is_file():
        if not imageio.is_image_file(path):
            exts = ", ".join(sorted(imageio.IMAGE_EXTENSIONS))
            raise SourceSpecError(f"{path} is not an image file (recognised extensions: {exts})")
        return FileListSource([path], label=str(path), max_pixels=max_pixels)
    raise SourceSpecError(f"data spec {part!r}: no such file or folder, and not a known form; "
                          f"give {SPEC_FORMS}")


def open_source(spec: str = "embedded", *, cache_dir: str | os.PathLike | None = None,
                max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS) -> Source:
    """Open a data spec (see the module docstring for the forms).

    Args:
        spec: the spec string; an empty spec is an error.
        cache_dir: cache folder for ``hf:`` sources (Hugging Face's default cache when ``None``).
        max_pixels: passed to :func:`oldphoto_bench.imageio.load_image` for files and folders.
    """
    if not isinstance(spec, str):
        raise TypeError(f"data spec must be a string, got {type(spec).__name__}")
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise SourceSpecError(f"empty data spec {spec!r}; give {SPEC_FORMS}")
    sources = [_open_one(p, cache_dir, max_pixels) for p in parts]
    return sources[0] if len(sources) == 1 else ConcatSource(sources)
