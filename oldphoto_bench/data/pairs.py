"""(clean, degraded, mask) training and validation pairs: crop a photo, then degrade the crop.

Item ``i`` depends only on ``(seed, epoch, i)`` in training mode and on ``(seed, i)`` in evaluation mode::

    item_seed   = derive_seed(seed, epoch, i)      (train)      derive_seed(seed, i)      (eval)
    crop, flip  <- numpy_rng(item_seed, 0)
    degradation <- synthesizer(crop, seed=derive_seed(item_seed, 1))

With ``degrade_scope="photo"`` the whole photo is aged first and the crop is cut from it, so fading,
vignetting, paper texture and contrast act at photo scale as in a test photo::

    photo_seed  = derive_seed(seed, PHOTO_KEY, epoch // photo_reuse, i)   (train)   derive_seed(seed, i) (eval)
    degradation <- synthesizer(photo, seed=photo_seed);   crop, flip <- numpy_rng(item_seed, 0)

A worker keeps the aged photo for ``photo_reuse`` epochs (fresh crops each epoch) since ageing a 0.15 MP
photo costs about 8 times a 64 px crop's training step data (84 ms against 10 ms, measured on this project's
2-core machine).

No generator is shared and the only state ``__getitem__`` changes is that cache of pure results, so any number
of DataLoader workers gives the same items as ``num_workers=0``. Call :meth:`PairsDataset.set_epoch` before each training epoch for fresh
crops and degradations (with ``persistent_workers=True`` the workers keep their own copy: leave it off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..imageio import gray_to_rgb, rgb_to_luma
from ..seeding import check_seed, derive_seed, numpy_rng
from .sources import Source

PAD_MODES = ("reflect", "replicate", "constant", "circular")
DEGRADE_SCOPES = ("crop", "photo")
PHOTO_KEY = 7  # derive_seed sub-key of photo-scale degradations


def _source_index(n: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Source index of every output position along one axis of length n padded by (before, after)."""
    p = torch.arange(-before, n + after)
    if mode == "replicate" or n == 1:  # a one-pixel side has nothing to mirror: repeat it
        return p.clamp(0, n - 1)
    if mode == "circular":
        return p.remainder(n)
    period = 2 * (n - 1)  # reflect: ... 2 1 | 0 1 2 | 1 0 1 2 1 ... (edge pixel not repeated)
    q = p.remainder(period)
    return torch.where(q < n, q, period - q)


def pad_to(image: torch.Tensor, height: int, width: int, mode: str = "reflect"
           ) -> tuple[torch.Tensor, list[int]]:
    """Pad (N, C, H, W) symmetrically to at least height x width; returns it and [top, bottom, left, right].

    Any pad size works: ``reflect`` mirrors periodically without repeating the edge pixel (numpy's
    ``reflect``; a one-pixel side is repeated), ``replicate`` repeats the edge, ``circular`` wraps around,
    ``constant`` pads with zeros. The extra row/column of an odd pad goes to the bottom/right.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {mode!r}; valid: {', '.join(PAD_MODES)}")
    h, w = image.shape[-2:]
    need_h, need_w = max(0, height - h), max(0, width - w)
    amounts = [need_h // 2, need_h - need_h // 2, need_w // 2, need_w - need_w // 2]
    if not any(amounts):
        return image, amounts
    t, b, lft, r = amounts
    if mode == "constant":
        return F.pad(image, (lft, r, t, b), mode="constant", value=0.0), amounts
    rows = _source_index(h, t, b, mode).to(image.device)
    cols = _source_index(w, lft, r, mode).to(image.device)
    return image.index_select(-2, rows).index_select(-1, cols), amounts


def _crop_size(crop: int | Sequence[int] | None) -> tuple[int, int] | None:
    if crop is None:
        return None
    if isinstance(crop, int):
        crop = (crop, crop)
    ch, cw = (int(c) for c in crop)
    if ch <= 0 or cw <= 0:
        raise ValueError(f"crop must be positive, got {crop}")
    return ch, cw


class PairsDataset(Dataset):
    """Synthetic (clean, degraded, mask) pairs from a :class:`~oldphoto_bench.data.sources.Source`.

    Args:
        source: the clean photos.
        synthesizer: a :class:`~oldphoto_bench.degrade.Synthesizer` (or a preset name / mapping to build
            one); ``None`` gives degraded == clean and an empty mask (for real old photos, which carry their
            own damage).
        crop: output size, an int or (h, w); ``None`` keeps whole images (evaluation only, batch size 1).
            256 is the released code's training crop (``--loadSize 256`` for the global networks).
        train: True: random crop (padded if the photo is smaller) + random horizontal flip, as the released
            training data loaders do; False: fixed centre crop, no flip.
        seed: the data set's seed.
        pad_mode: how photos smaller than the crop are padded (``reflect``, ``replicate``, ``constant``,
            ``circular``).
        degrade_scope: ``"crop"`` ages the crop (the released training loaders age the loaded 256 px
            image); ``"photo"`` ages the whole photo and crops it afterwards (see the module docstring).
        photo_reuse: with ``degrade_scope="photo"``, epochs that share one aged version of each photo.
        gray_target: when the synthesizer turned the input grayscale, the target becomes the clean photo's
            luma too, as the released training code does: colour that is not in the input is not learnt.
        clean_fraction: share of items left undamaged (degraded == clean, empty mask), drawn per item: a
            model that also sees photos needing nothing learns to leave them alone.

    Item: ``{"clean": (3, h, w), "degraded": (3, h, w), "mask": (1, h, w), "record": dict}``, float32 in
    [0, 1]; mask is 1 where a structured defect changed the pixel. ``record`` is the synthesizer's replayable
    record (``Synthesizer.replay(clean[None], record)`` reproduces ``degraded``) plus ``index``, ``name``,
    ``source``, ``epoch``, ``item_seed``, ``crop`` ([top, left, height, width] in the source photo), ``pad``
    ([top, bottom, left, right]), ``flip`` and ``was_gray``.
    """

    def __init__(self, source: Source, synthesizer: Any = None, crop: int | Sequence[int] | None = 256,
                 train: bool = True, seed: int = 0, pad_mode: str = "reflect", degrade_scope: str = "crop",
                 photo_reuse: int = 1, gray_target: bool = False, clean_fraction: float = 0.0):
        if isinstance(synthesizer, (str, Mapping)):
            from ..degrade import Synthesizer

            synthesizer = Synthesizer(synthesizer)
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad mode {pad_mode!r}; valid: {', '.join(PAD_MODES)}")
        if len(source) == 0:
            raise ValueError(f"source {source!r} has no images")
        self.source = source
        self.synthesizer = synthesizer
        self.crop = _crop_size(crop)
        self.train = bool(train)
        self.seed = check_seed(seed)
        self.pad_mode = pad_mode
        if degrade_scope not in DEGRADE_SCOPES:
            raise ValueError(f"unknown degrade_scope {degrade_scope!r}; valid: {', '.join(DEGRADE_SCOPES)}")
        if int(photo_reuse) < 1:
            raise ValueError(f"photo_reuse must be >= 1, got {photo_reuse}")
        self.degrade_scope, self.photo_reuse, self.gray_target = degrade_scope, int(photo_reuse), bool(gray_target)
        if not 0.0 <= float(clean_fraction) <= 1.0:
            raise ValueError(f"clean_fraction must be in [0, 1], got {clean_fraction}")
        self.clean_fraction = float(clean_fraction)
        self._photos: dict[int, tuple[int, torch.Tensor, torch.Tensor, dict[str, Any]]] = {}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch for training crops/degradations (ignored when ``train=False``)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def item_seed(self, index: int) -> int:
        return derive_seed(self.seed, self.epoch, index) if self.train else derive_seed(self.seed, index)

    def photo_seed(self, index: int) -> int:
        """Seed of the photo-scale degradation of photo ``index`` (``degrade_scope="photo"``)."""
        if not self.train:
            return derive_seed(self.seed, index)
        return derive_seed(self.seed, PHOTO_KEY, self.epoch // self.photo_reuse, index)

    def _aged_photo(self, index: int, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """The whole photo aged with :meth:`photo_seed` (cached while the seed stays the same)."""
        seed = self.photo_seed(index)
        hit = self._photos.get(index)
        if hit is None or hit[0] != seed:
            out = self.synthesizer(image, seed=seed)
            hit = self._photos[index] = (seed, out.image, out.mask.float(), dict(out.records[0]))
        return hit[1], hit[2], dict(hit[3])

    def _crop_box(self, rng: Any, h: int, w: int) -> tuple[int, int, int, int, bool]:
        """(top, left, height, width, flip) in source coordinates; height/width are at most the photo's."""
        ch, cw = self.crop if self.crop is not None else (h, w)
        ch, cw = min(ch, h), min(cw, w)
        if self.train:
            # always draw three numbers so the stream does not depend on the photo's size
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            flip = bool(rng.random() < 0.5)
        else:
            top, left, flip = (h - ch) // 2, (w - cw) // 2, False
        return top, left, ch, cw, flip

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index = index % n
        sample = self.source[index]
        image = sample.image
        h, w = image.shape[-2:]
        item_seed = self.item_seed(index)
        rng = numpy_rng(item_seed, 0)
        top, left, ch, cw, flip = self._crop_box(rng, h, w)
        # drawn after the crop so that clean_fraction=0 keeps the crops of earlier versions
        undamaged = self.clean_fraction > 0 and bool(rng.random() < self.clean_fraction)

        def cut(t: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
            t = t[..., top : top + ch, left : left + cw]
            pad = [0, 0, 0, 0]
            if self.crop is not None:
                t, pad = pad_to(t, self.crop[0], self.crop[1], self.pad_mode)
            return (t.flip(-1) if flip else t).contiguous(), pad

        clean, pad = cut(image)
        if undamaged:
            degraded, mask = clean.clone(), torch.zeros_like(clean[:, :1])
            record = {"ops": [], "size": list(clean.shape[-2:]), "undamaged": True}
        elif self.synthesizer is not None and self.degrade_scope == "photo":
            aged, aged_mask, record = self._aged_photo(index, image)
            degraded, mask = cut(aged)[0], cut(aged_mask)[0]
            record.update(degrade_scope="photo", photo_seed=self.photo_seed(index))
        elif self.synthesizer is None:
            degraded, mask = clean.clone(), torch.zeros_like(clean[:, :1])
            record: dict[str, Any] = {"ops": [], "size": list(clean.shape[-2:])}
        else:
            out = self.synthesizer(clean, seed=derive_seed(item_seed, 1))
            degraded, mask, record = out.image, out.mask, dict(out.records[0])
        if self.gray_target and any(op.get("type") == "grayscale" for op in record.get("ops", [])):
            clean = gray_to_rgb(rgb_to_luma(clean))
            record["gray_target"] = True
        record.update({
            "index": index, "name": sample.name, "source": sample.info.get("source", self.source.label),
            "epoch": self.epoch if self.train else None, "item_seed": item_seed,
            "crop": [top, left, ch, cw], "pad": pad, "flip": flip,
            "was_gray": bool(sample.info.get("was_gray", False)),
        })
        return {"clean": clean[0], "degraded": degraded[0], "mask": mask[0].float(), "record": record}


def collate(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack ``clean``/``degraded``/``mask`` into (N, C, h, w) batches; ``record`` becomes a list of dicts."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key in ("clean", "degraded", "mask"):
        tensors = [b[key] for b in batch]
        sizes = {tuple(t.shape) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"cannot batch {key!r} tensors of different shapes {sorted(sizes)}; "
                             "set a crop size or use batch_size=1")
        out[key] = torch.stack(tensors)
    out["record"] = [dict(b["record"]) for b in batch]
    return out
