"""Hugging Face ``datasets`` as an image source: ``hf:<hub id or local folder>[:split]``.

A local folder is read with the ``imagefolder`` builder (no network); a hub id (``owner/name``) is loaded with
``datasets.load_dataset``, which needs network access or a filled local cache. Nothing is loaded at
construction: the data set is opened on first use (``len``, ``names`` or an item), so building a source
never touches the network. The image column is the first feature of type ``datasets.Image``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .. import imageio
from .sources import Sample, Source, SourceSpecError

# owner/name or name; letters, digits, '-', '_', '.' (the hub's rules, loosely)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
DEFAULT_SPLIT = "train"


def parse_hf_spec(spec: str) -> tuple[str, str]:
    """``"hf:<id>[:split]"`` -> ``(id, split)``; the split defaults to ``"train"``.

    The id ends at the first ``:`` after the prefix, so splits may use slicing (``hf:x:train[:10%]``).
    """
    rest = spec[3:] if spec.startswith("hf:") else spec
    dataset_id, _, split = rest.partition(":")
    if not dataset_id:
        raise SourceSpecError(f"{spec!r}: give 'hf:<hub id or local folder>[:split]'")
    return dataset_id, split or DEFAULT_SPLIT


class HFSource(Source):
    """Images of one split of a Hugging Face data set.

    Args:
        spec: ``"hf:<id>[:split]"`` (the ``hf:`` prefix is optional); ``id`` is a local folder of images
            (read with ``imagefolder``) or a hub id.
        cache_dir: where ``datasets`` writes its Arrow cache (its default cache when ``None``).
    """

    def __init__(self, spec: str, cache_dir: str | os.PathLike | None = None):
        self.dataset_id, self.split = parse_hf_spec(spec)
        folder = Path(self.dataset_id).expanduser()
        self.local = folder.is_dir()
        if not self.local and not _HUB_ID.match(self.dataset_id):
            raise SourceSpecError(f"{spec!r}: {self.dataset_id!r} is neither an existing folder nor a "
                                  "Hugging Face hub id like 'owner/name'")
        self.folder = folder.resolve() if self.local else None
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self.label = f"hf:{self.folder if self.local else self.dataset_id}:{self.split}"
        self._ds: Any = None
        self._column: str | None = None
        self._names: list[str] | None = None

    # ---- opening --------------------------------------------------------------------------------------------
    def _load(self) -> Any:
        try:
            import datasets
        except ImportError as e:  # pragma: no cover - datasets is a declared dependency
            raise ImportError("hf: sources need the 'datasets' package (pip install datasets)") from e
        try:
            if self.local:
                return datasets.load_dataset("imagefolder", data_dir=str(self.folder), split=self.split,
                                             cache_dir=self.cache_dir)
            return datasets.load_dataset(self.dataset_id, split=self.split, cache_dir=self.cache_dir)
        except Exception as e:
            if self.local:
                raise RuntimeError(f"could not read image folder {self.folder} as a Hugging Face imagefolder "
                                   f"(split {self.split!r}): {e}") from e
            raise RuntimeError(
                f"could not load Hugging Face data set {self.dataset_id!r} split {self.split!r}: {e}. "
                "Loading from the hub needs network access (or the data set in the local cache); offline, "
                "point at a local folder instead: 'hf:/path/to/folder' or just '/path/to/folder'"
            ) from e

    def _dataset(self) -> Any:
        if self._ds is None:
            import datasets

            ds = self._load()
            columns = [k for k, v in ds.features.items() if isinstance(v, datasets.Image)]
            if not columns:
                found = ", ".join(f"{k}: {type(v).__name__}" for k, v in ds.features.items())
                raise SourceSpecError(f"{self.label}: no image column (features: {found})")
            self._column = columns[0]
            self._ds = ds.select_columns([self._column])  # decode only the image column
        return self._ds

    # ---- Source API -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._dataset())

    def _paths(self) -> list[str | None]:
        import pyarrow.compute as pc

        import datasets

        ds = self._dataset().cast_column(self._column, datasets.Image(decode=False)).with_format("arrow")
        table = ds[:]
        return pc.struct_field(table.column(self._column).combine_chunks(), "path").to_pylist()

    def names(self) -> list[str]:
        if self._names is None:
            names = []
            for i, path in enumerate(self._paths()):
                if not path:
                    names.append(f"{self.split}_{i:06d}")
                elif self.local and Path(path).is_relative_to(self.folder):
                    names.append(Path(path).relative_to(self.folder).as_posix())
                else:
                    names.append(Path(path).name)
            if len(set(names)) != len(names):  # keep names unique (hub sets may repeat file names)
                names = [f"{i:06d}_{n}" for i, n in enumerate(names)]
            self._names = names
        return list(self._names)

    def load(self, index: int) -> Sample:
        ds = self._dataset()
        where = f"{self.label}[{index}]"
        try:
            pil = ds[index][self._column]
            if pil is None:
                raise ValueError("no image in this row")
            image, was_gray = imageio.from_pil(pil)
        except Exception as e:
            raise imageio.ImageError(where, f"cannot decode image: {e}") from e
        path = getattr(pil, "filename", None) or None
        info = {"source": self.label, "index": index, "size": list(image.shape[-2:]), "was_gray": bool(was_gray),
                "path": path}
        return Sample(image, self.names()[index], info)
