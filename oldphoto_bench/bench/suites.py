"""Benchmark suites: the photos a benchmark runs on, aged once and cached as PNG files.

Forms of ``--suite``::

    embedded            the photos shipped inside scikit-image (no download), aged with --preset / --seed
    clean:DIR           clean photos under DIR, aged with --preset / --seed
    hf:<id>[:split]     a Hugging Face data set of clean photos (as the data sources), aged the same way
    real:DIR            real old photos under DIR: no reference, so only no-reference metrics and image grids

Preparation (once per output folder; a rerun reuses the files)::

    clean  = resize(photo) so that max(H, W) <= max_side   (antialiased bicubic, only ever downscaling;
                                                            max_side = 0 keeps the full size)
    clean  = quantise(clean) to 8 bits                      (written to OUT/data/clean/<name>.png)
    x, m   = Synthesizer(preset)(clean, seed_i)             (OUT/data/degraded/<name>.png, OUT/data/mask/<name>.png)
    seed_i = derive_seed(seed, crc32(name))                 (as ``oldphoto-bench degrade``: adding photos
                                                             changes no other photo's damage)

Everything downstream reads these PNG files, so the first run and a rerun score exactly the same pixels.
``OUT/data/suite.json`` records the settings, each photo's replayable degradation record and its
severity proxies (``n_ops``: degradation operations that fired; ``mask_fraction``: share of pixels under
a structured defect). An output folder prepared with other settings is refused rather than mixed.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import imageio
from ..imageio import resize_max_side  # noqa: F401  (part of this module's interface)
from ..provenance import atomic_write_bytes
from ..registry import Registry
from ..seeding import derive_seed

SUITE_FORMS = "embedded, clean:DIR, hf:<id>[:split], real:DIR"
SUITES = Registry("benchmark suite")
DEFAULT_MAX_SIDE = 512
SUITE_FILE = "suite.json"


@dataclass
class SuiteItem:
    """One photo of a suite: the degraded input, and for synthetic suites the clean reference and the mask."""

    name: str
    degraded: Path
    clean: Path | None = None
    mask: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def load_degraded(self) -> torch.Tensor:
        """``(1, 3, H, W)`` float32 in [0, 1]."""
        return imageio.load_image(self.degraded, max_pixels=None)[0]

    def load_clean(self) -> torch.Tensor | None:
        return imageio.load_image(self.clean, max_pixels=None)[0] if self.clean else None

    def load_mask(self) -> torch.Tensor | None:
        """``(1, 1, H, W)`` in {0, 1}: pixels under a synthesized structured defect."""
        return imageio.load_mask(self.mask, max_pixels=None) if self.mask else None


@dataclass
class Suite:
    """A prepared suite. ``has_reference``: clean references exist (synthetic suites)."""

    spec: str
    kind: str
    has_reference: bool
    items: list[SuiteItem]
    settings: dict[str, Any]

    def names(self) -> list[str]:
        return [it.name for it in self.items]

    def __len__(self) -> int:
        return len(self.items)


def image_seed(seed: int, name: str) -> int:
    """The per-photo degradation seed, ``derive_seed(seed, crc32(name))`` (``oldphoto-bench degrade``'s rule)."""
    return derive_seed(seed, zlib.crc32(name.encode("utf-8")))


def safe_stem(name: str) -> str:
    """A file-name stem for a source name: folders joined by ``__``, the extension dropped."""
    stem = re.sub(r"\.[A-Za-z0-9]{2,5}$", "", name).replace("\\", "/").strip("/").replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", stem) or "image"


def parse_suite(spec: str) -> tuple[str, str]:
    """``"clean:/x"`` -> ``("clean", "/x")``; raises ``KeyError`` listing the valid forms."""
    if not isinstance(spec, str) or not spec.strip():
        raise KeyError(f"empty suite; valid suites: {SUITE_FORMS}")
    kind, _, arg = spec.strip().partition(":")
    if kind not in SUITES:
        raise KeyError(f"unknown suite {spec!r}; valid suites: {SUITE_FORMS}")
    if kind == "embedded" and arg:
        raise KeyError(f"suite 'embedded' takes no argument, got {spec!r}; valid suites: {SUITE_FORMS}")
    if kind != "embedded" and not arg:
        raise KeyError(f"suite {kind!r} needs an argument ({kind}:...); valid suites: {SUITE_FORMS}")
    return kind, arg


@SUITES.register("embedded")
def _embedded(arg: str) -> tuple[Any, bool]:
    from ..data import EmbeddedSource

    return EmbeddedSource(), True


@SUITES.register("clean")
def _clean(arg: str) -> tuple[Any, bool]:
    from ..data import FolderSource

    return FolderSource(arg), True


@SUITES.register("hf")
def _hf(arg: str) -> tuple[Any, bool]:
    from ..data import HFSource

    return HFSource(f"hf:{arg}"), True


@SUITES.register("real")
def _real(arg: str) -> tuple[Any, bool]:
    from ..data import FolderSource

    return FolderSource(arg), False


def _mismatch(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]


def prepare_suite(spec: str, out: str | Path, preset: str = "paper", seed: int = 0,
                  max_side: int = DEFAULT_MAX_SIDE, max_images: int | None = None,
                  progress: bool = True, log: Callable[[str], None] | None = None) -> Suite:
    """Open, resize, age and cache the suite under ``OUT/data`` (see the module docstring); reuse it if there.

    Raises ``KeyError`` for an unknown suite form and ``ValueError`` when ``OUT/data`` holds a suite prepared
    with other settings.
    """
    from tqdm import tqdm

    kind, arg = parse_suite(spec)
    synthetic = kind != "real"
    settings = {"suite": spec, "kind": kind, "preset": preset if synthetic else None,
                "seed": int(seed) if synthetic else None, "max_side": int(max_side),
                "max_images": None if max_images is None else int(max_images),
                "resize": (f"downscaled (antialiased bicubic) so that max(H, W) <= {max_side}, before ageing"
                           if max_side > 0 else "full size"),
                "quantisation": "references and inputs stored and scored as 8-bit PNG"}
    data = Path(out) / "data"
    index_path = data / SUITE_FILE
    if index_path.is_file():
        saved = json.loads(index_path.read_text())
        diff = _mismatch(saved["settings"], settings)
        if diff:
            raise ValueError(f"{data} holds a suite prepared with other settings ({'; '.join(diff)}); "
                             "choose another --out")
        return _from_index(saved, data)

    source, has_ref = SUITES.get(kind)(arg)
    n = len(source) if max_images is None else min(len(source), int(max_images))
    from ..degrade import Synthesizer

    synth = Synthesizer(preset) if synthetic else None
    stems: set[str] = set()
    entries = []
    for i in tqdm(range(n), desc=f"suite {spec}", unit="img", disable=not progress):
        sample = source[i]
        stem = safe_stem(sample.name)
        if stem in stems:
            stem = f"{stem}_{i}"
        stems.add(stem)
        image = resize_max_side(sample.image, int(max_side))
        entry: dict[str, Any] = {"name": stem, "source_name": sample.name, "original_size": list(sample.image.shape[-2:]),
                                 "size": list(image.shape[-2:]), "was_gray": bool(sample.info.get("was_gray", False))}
        if synth is None:
            imageio.save_image(image, data / "degraded" / f"{stem}.png")
        else:
            clean_path = imageio.save_image(image, data / "clean" / f"{stem}.png")
            clean = imageio.load_image(clean_path, max_pixels=None)[0]  # the quantised reference
            s = image_seed(int(seed), stem)
            aged = synth(clean, seed=s)
            imageio.save_image(aged.image, data / "degraded" / f"{stem}.png")
            imageio.save_mask(aged.mask, data / "mask" / f"{stem}.png")
            record = aged.records[0]
            entry.update(seed=s, n_ops=len(record["ops"]), ops=[op["type"] for op in record["ops"]],
                         mask_fraction=float(aged.mask.mean()), record=record)
        entries.append(entry)
    saved = {"settings": settings, "has_reference": has_ref, "items": entries}
    atomic_write_bytes(index_path, (json.dumps(saved, indent=1, default=str) + "\n").encode())
    if log:
        log(f"prepared suite {spec}: {n} photo(s) in {data}")
    return _from_index(saved, data)


_STEM = re.compile(r"[A-Za-z0-9._+-]+")  # what safe_stem produces: a file-name stem, never a path


def _from_index(saved: dict[str, Any], data: Path) -> Suite:
    settings = saved["settings"]
    items = []
    for e in saved["items"]:
        stem = e["name"]
        # names become file names under OUT (data/, cache/): one that is a path could lead writes out of OUT
        if not isinstance(stem, str) or not _STEM.fullmatch(stem) or stem.strip(".") == "":
            raise ValueError(f"{data / SUITE_FILE}: photo name {stem!r} is not a plain file name (letters, digits "
                             f"and ._+- only); delete {data} to prepare the suite again")
        ref = saved["has_reference"]
        items.append(SuiteItem(stem, data / "degraded" / f"{stem}.png",
                               data / "clean" / f"{stem}.png" if ref else None,
                               data / "mask" / f"{stem}.png" if ref else None,
                               {k: v for k, v in e.items() if k != "record"}))
    missing = [p for it in items for p in (it.degraded, it.clean, it.mask) if p is not None and not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{data} is incomplete ({missing[0]} is missing); delete {data} to prepare "
                                "the suite again")
    return Suite(settings["suite"], settings["kind"], bool(saved["has_reference"]), items, settings)
