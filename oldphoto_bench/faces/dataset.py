"""Training data of the face enhancer: aligned faces from a source of photos, degraded with the ``face`` preset.

:class:`AlignedFaces` is a :class:`~oldphoto_bench.data.Source` of clean aligned faces ``(1, 3, S, S)``:

* from ordinary photos (``aligned=False``): every photo is searched once with a face detector
  (:mod:`.detect`); every face whose box side is at least ``min_face`` pixels is aligned to the released
  template at ``S x S`` (:mod:`.align`). Faces larger than the crop are first area-resized to the crop's
  scale (antialiased), so a 1000 px face does not alias when warped to 64 px. The crops are kept as 8-bit
  values (``round(255 x) / 255``, the values a PNG holds) in memory and, with ``cache_dir``, as PNG files
  plus an ``index.json`` that later runs reuse instead of detecting again;
* from a folder of already aligned faces (``aligned=True``, e.g. FFHQ at 256 or 512): each image is
  centre-cropped to a square and area-resized to ``S x S``; nothing is detected. The faces should be aligned
  like the template (eyes near rows 0.38 S, mouth near 0.6 S; FFHQ's alignment is close, not identical).

:class:`FaceDataset` degrades them exactly as :class:`~oldphoto_bench.data.PairsDataset` does (it is one):
item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``; the flip comes from ``numpy_rng(item_seed, 0)``
and the degradation from ``synthesizer(face, seed=derive_seed(item_seed, 1))``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import imageio
from ..data import ConcatSource, FileListSource, PairsDataset, Sample, Source, check_not_test_set, open_source
from ..provenance import atomic_write_bytes
from .align import FACE_SCALE, FACE_SIZE, align_face, alignment_matrix, crop_footprint
from .detect import DETECT_MAX_SIDE, build_detector, detect_faces, resolve_backend
from .refine import MIN_FACE

log = logging.getLogger("oldphoto_bench")

CACHE_VERSION = 1  # bump when crops would come out differently for the same inputs
CACHE_INDEX = "index.json"


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Antialiased bilinear resize of ``(N, C, H, W)`` (area-like when shrinking)."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def _to_u8(image: torch.Tensor) -> torch.Tensor:
    """``(1, 3, S, S)`` float -> ``(3, S, S)`` uint8 (rounded to nearest, as :func:`imageio.save_image`)."""
    return torch.from_numpy(imageio.to_uint8(image).transpose(2, 0, 1).copy())


def _from_u8(u8: torch.Tensor) -> torch.Tensor:
    return imageio.to_tensor(u8.numpy().transpose(1, 2, 0))


def align_antialiased(image: torch.Tensor, landmarks5: np.ndarray, size: int, face_scale: float = FACE_SCALE
                      ) -> torch.Tensor:
    """The aligned crop ``(1, 3, size, size)`` of the face at ``landmarks5`` without aliasing.

    When the alignment shrinks the face (similarity scale ``s < 1``), the part of the photo under the crop is
    first resized by ``s`` (antialiased) and the points moved with it (pixel centres: ``x' = (x + 0.5) s'
    - 0.5``), so the final warp is near unit scale; otherwise this is :func:`.align.align_face`.
    """
    matrix = alignment_matrix(landmarks5, size, face_scale)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))
    window = crop_footprint(matrix, size, tuple(image.shape[-2:]))
    if scale >= 1.0 or window is None:
        return align_face(image, landmarks5, size, face_scale)[0]
    x0, y0, x1, y1 = window
    part = image[..., y0:y1, x0:x1]
    h, w = part.shape[-2:]
    nh, nw = max(2, round(h * scale)), max(2, round(w * scale))
    small = _resize(part, nh, nw)
    sx, sy = nw / w, nh / h
    points = (np.asarray(landmarks5, dtype=np.float64) - [x0, y0] + 0.5) * [sx, sy] - 0.5
    # Reflection padding now mirrors at the window's edges; they are the photo's edges wherever the crop
    # leaves the photo (the window covers the whole crop otherwise), so the result matches align_face's.
    return align_face(small, points, size, face_scale)[0]


def source_fingerprint(source: Source) -> list[Any]:
    """What identifies a source's photos cheaply: label, names, and each file's size and mtime."""
    if isinstance(source, ConcatSource):
        return [source_fingerprint(s) for s in source.sources]
    out: list[Any] = [type(source).__name__, source.label, source.names()]
    if isinstance(source, FileListSource):
        stats = [p.stat() for p in source.paths]
        out.append([[s.st_size, s.st_mtime_ns] for s in stats])
    return out


class AlignedFaces(Source):
    """Clean aligned faces ``(1, 3, size, size)`` in [0, 1] from ``photos`` (see the module docstring).

    Args:
        photos: a :class:`~oldphoto_bench.data.Source`.
        size: side of the aligned faces (256 as released).
        aligned: the photos are aligned faces already: centre square, resized; no detection.
        backend: detector (``auto``, ``dlib``, ``cascade``) for unaligned photos.
        min_face: faces whose box side is under this many pixels are left out (their crop would be mostly
            upsampled); default :data:`.refine.MIN_FACE`.
        detect_max_side: detection runs on a copy whose long side is at most this (2048 as
            :mod:`.detect`; 512 is enough for portraits and 2-3x faster).
        face_scale: template scale (1.3 as released).
        cache_dir: folder for the crops and ``index.json`` (one sub-folder per set of inputs and settings).
        write_cache: write the cache when it is missing (off on all but one process under torchrun).
        keep_in_memory: hold the 8-bit crops in memory (else, with ``cache_dir``, read the PNG on access).
        note: where the one-line summary goes (the run log); the ``oldphoto_bench`` logger by default.

    Sample ``info``: ``source``, ``index``, ``photo`` (the photo's name), ``photo_index``, ``was_gray`` and
    ``size``; for detected faces also ``face`` (number in the photo), ``box``, ``landmarks``, ``score``,
    ``backend``. Names are ``<photo name>#<face number>`` (detected) or the photo's name (aligned).
    """

    def __init__(self, photos: Source, size: int = FACE_SIZE, aligned: bool = False, backend: str = "auto",
                 min_face: float = MIN_FACE, detect_max_side: int | None = DETECT_MAX_SIDE,
                 face_scale: float = FACE_SCALE, cache_dir: str | os.PathLike | None = None,
                 write_cache: bool = True, keep_in_memory: bool = True, note: Callable[[str], None] | None = None):
        if len(photos) == 0:
            raise ValueError(f"source {photos!r} has no images")
        self.photos, self.size, self.aligned = photos, int(size), bool(aligned)
        self.face_scale, self.min_face, self.detect_max_side = float(face_scale), float(min_face), detect_max_side
        self.keep_in_memory = bool(keep_in_memory)
        self.label = f"faces({photos.label})"
        self.cache_folder: Path | None = None
        self._u8: dict[int, torch.Tensor] = {}
        self.summary: dict[str, Any] = {"photos": len(photos), "size": self.size, "aligned": self.aligned}
        if self.aligned:
            self.entries = [{"photo_index": i, "photo": n} for i, n in enumerate(photos.names())]
            self._names = photos.names()
            self.backend = None
        else:
            self.backend = resolve_backend(backend)
            self._find_faces(cache_dir, write_cache)
            self._names = [f"{e['photo']}#{e['face']}" for e in self.entries]
            if not self.entries:
                raise ValueError(f"no face of at least {self.min_face:g} px found in {photos.label} "
                                 f"({len(photos)} photos, backend {self.backend}); lower min_face, try another "
                                 "backend, or give aligned faces with aligned: true")
        self.summary["faces"] = len(self.entries)
        line = (f"faces: {len(self.entries)} aligned {self.size}px faces from {len(photos)} photos of "
                f"{photos.label}" + (" (already aligned: resized)" if self.aligned else
                f" (backend {self.backend}, {self.summary['photos_without_faces']} without a face, "
                f"{self.summary['faces_too_small']} under {self.min_face:g} px left out"
                f"{', from cache ' + str(self.cache_folder) if self.summary.get('cached') else ''})"))
        (note or log.info)(line)

    # ---- detection, once -----------------------------------------------------------------------------------
    def cache_key(self) -> str:
        settings = {"version": CACHE_VERSION, "size": self.size, "backend": self.backend,
                    "min_face": self.min_face, "detect_max_side": self.detect_max_side,
                    "face_scale": self.face_scale, "photos": source_fingerprint(self.photos)}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _find_faces(self, cache_dir: str | os.PathLike | None, write_cache: bool) -> None:
        if cache_dir is not None:
            self.cache_folder = Path(cache_dir) / self.cache_key()
            index = self.cache_folder / CACHE_INDEX
            if index.is_file():
                saved = json.loads(index.read_text())
                self.entries, self.summary = saved["faces"], {**self.summary, **saved["summary"], "cached": True}
                if self.keep_in_memory:
                    for k in range(len(self.entries)):
                        self._u8[k] = self._read_cached(k)
                return
        detector = build_detector(self.backend, max_side=self.detect_max_side)
        entries, crops, no_face, small = [], [], 0, 0
        for i in range(len(self.photos)):
            sample = self.photos[i]
            faces = detect_faces(sample.image, detector=detector)
            no_face += not faces
            for k, face in enumerate(faces):
                if face.size < self.min_face:
                    small += 1
                    continue
                crop = align_antialiased(sample.image, face.landmarks5, self.size, self.face_scale)
                crops.append(_to_u8(crop))
                d = face.to_dict()
                entries.append({"photo_index": i, "photo": sample.name, "face": k, "box": d["box"],
                                "landmarks": d["landmarks"], "score": d["score"], "backend": face.backend,
                                "was_gray": bool(sample.info.get("was_gray", False))})
        self.entries = entries
        self.summary.update(photos_without_faces=no_face, faces_too_small=small, backend=self.backend)
        if self.cache_folder is not None and write_cache:
            for k, u8 in enumerate(crops):
                imageio.save_image(_from_u8(u8), self.cache_folder / f"{k:06d}.png")
            payload = {"faces": entries, "summary": self.summary}
            # written last: its presence means the crops are complete
            atomic_write_bytes(self.cache_folder / CACHE_INDEX, (json.dumps(payload, indent=1) + "\n").encode())
        if self.keep_in_memory or self.cache_folder is None or not write_cache:
            self._u8 = dict(enumerate(crops))

    def _read_cached(self, k: int) -> torch.Tensor:
        assert self.cache_folder is not None
        image, _ = imageio.load_image(self.cache_folder / f"{k:06d}.png")
        return _to_u8(image)

    # ---- Source interface ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return list(self._names)

    def _face_u8(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        hit = self._u8.get(index)
        if self.aligned:
            if hit is None:
                sample = self.photos[index]
                img = sample.image
                h, w = img.shape[-2:]
                side = min(h, w)
                top, left = (h - side) // 2, (w - side) // 2
                hit = _to_u8(_resize(img[..., top : top + side, left : left + side], self.size, self.size))
                if self.keep_in_memory:
                    self._u8[index] = hit
                self.entries[index]["was_gray"] = bool(sample.info.get("was_gray", False))
            return hit, dict(self.entries[index])
        if hit is None:
            hit = self._read_cached(index)
        return hit, dict(self.entries[index])

    def load(self, index: int) -> Sample:
        u8, entry = self._face_u8(index)
        info = {"source": self.label, "index": index, "size": [self.size, self.size], **entry}
        info.setdefault("was_gray", False)
        return Sample(_from_u8(u8), self._names[index], info)


class FaceDataset(PairsDataset):
    """(clean, degraded, mask) aligned-face pairs: :class:`AlignedFaces` degraded with ``synthesizer``.

    Args:
        photos: a :class:`~oldphoto_bench.data.Source`, or a data spec string (opened with
            :func:`~oldphoto_bench.data.open_source` after :func:`~oldphoto_bench.data.check_not_test_set`:
            test sets are refused unless ``allow_test_sets``).
        synthesizer: preset name / mapping / :class:`~oldphoto_bench.degrade.Synthesizer` (``face`` preset).
        size, aligned, backend, min_face, detect_max_side, face_scale, cache_dir, write_cache, keep_in_memory,
        note: as :class:`AlignedFaces`.
        train: random horizontal flips and per-epoch degradations (False: no flip, fixed degradations).
        seed: the data set's seed.
        gray_target, clean_fraction: as :class:`~oldphoto_bench.data.PairsDataset` (a face the synthesizer
            turned gray gets a gray target; a share of pairs left undamaged).

    Items as :class:`~oldphoto_bench.data.PairsDataset`: ``{"clean", "degraded": (3, S, S), "mask": (1, S, S),
    "record"}``; the record's ``name`` is the face's name (``photo#k``).
    """

    def __init__(self, photos: Source | str, synthesizer: Any = "face", size: int = FACE_SIZE,
                 train: bool = True, seed: int = 0, *, aligned: bool = False, backend: str = "auto",
                 min_face: float = MIN_FACE, detect_max_side: int | None = DETECT_MAX_SIDE,
                 face_scale: float = FACE_SCALE, cache_dir: str | os.PathLike | None = None,
                 write_cache: bool = True, keep_in_memory: bool = True, note: Callable[[str], None] | None = None,
                 allow_test_sets: bool = False, gray_target: bool = False, clean_fraction: float = 0.0):
        if isinstance(photos, str):
            if not allow_test_sets:
                check_not_test_set(photos)
            photos = open_source(photos)
        self.faces = AlignedFaces(photos, size, aligned=aligned, backend=backend, min_face=min_face,
                                  detect_max_side=detect_max_side, face_scale=face_scale, cache_dir=cache_dir,
                                  write_cache=write_cache, keep_in_memory=keep_in_memory, note=note)
        super().__init__(self.faces, synthesizer, crop=self.faces.size, train=train, seed=seed,
                         gray_target=gray_target, clean_fraction=clean_fraction)
