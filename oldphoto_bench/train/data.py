"""Deterministic, resumable, shardable batch streams for training.

A batch is a pure function of ``(seed, epoch, step in epoch, rank)``:

* epoch ``e``'s order is a permutation of ``range(n)`` drawn from ``numpy_rng(seed, e)``; when ``n`` is
  smaller than one global batch, further permutations ``numpy_rng(seed, e, k)`` are appended until it is not;
* step ``s`` of the epoch takes the global batch ``order[s * G : (s + 1) * G]`` with
  ``G = batch_size * world_size`` (the tail that does not fill a global batch is dropped, as
  ``drop_last=True``), and rank ``r`` takes its slice ``[r * batch_size : (r + 1) * batch_size]``: every
  rank sees different photos, like ``DistributedSampler``, and the union over ranks is the same global batch
  whatever the number of processes;
* item ``i`` of epoch ``e`` is ``PairsDataset`` item ``i`` with ``set_epoch(e)``, itself a function of
  ``(dataset seed, e, i)``.

A :class:`BatchStream` therefore resumes exactly from its state ``{"epoch", "offset"}`` (``offset`` = batches
already consumed in the epoch), and one DataLoader runs across epochs without re-spawning workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.pairs import collate
from ..data.sources import Sample, Source
from ..seeding import check_seed, numpy_rng, torch_generator


class CachedSource(Source):
    """Keeps every decoded photo of ``source`` in memory after its first load (decoding a PNG costs more
    than a training step of the small recipes).

    Photos are kept as uint8 when that is exact (8-bit files: ``u8 / 255`` gives back the same float32
    bytes), else as float32: about 3 or 12 bytes per pixel. Each DataLoader worker holds its own cache.
    """

    def __init__(self, source: Source):
        self.source = source
        self.label = source.label
        self._cache: dict[int, tuple[torch.Tensor, str, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self.source)

    def names(self) -> list[str]:
        return self.source.names()

    def load(self, index: int) -> Sample:
        hit = self._cache.get(index)
        if hit is None:
            sample = self.source.load(index)
            image = sample.image
            u8 = (image * 255.0).round().clamp(0, 255).to(torch.uint8)
            kept = u8 if torch.equal(u8.float() / 255.0, image) else image
            hit = self._cache[index] = (kept, sample.name, dict(sample.info))
        kept, name, info = hit
        image = kept.float() / 255.0 if kept.dtype == torch.uint8 else kept.clone()
        return Sample(image, name, dict(info))


class SubsetSource(Source):
    """The photos ``indices`` of ``source``, in that order (names and samples as ``source`` gives them)."""

    def __init__(self, source: Source, indices: list[int]):
        self.source, self.indices = source, list(indices)
        self.label = source.label
        names = source.names()
        self._names = [names[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def names(self) -> list[str]:
        return list(self._names)

    def load(self, index: int) -> Sample:
        return self.source.load(self.indices[index])


def _file_of(source: Source, index: int) -> tuple[Any, int | None] | None:
    """(path, max_pixels) of photo ``index`` when ``source`` reads it from a file, else None."""
    from ..data.sources import ConcatSource, FileListSource

    if isinstance(source, CachedSource | SubsetSource):
        inner = source.source
        return _file_of(inner, source.indices[index] if isinstance(source, SubsetSource) else index)
    if isinstance(source, FileListSource):
        return source.paths[index], source.max_pixels
    if isinstance(source, ConcatSource):
        start = 0
        for part, end in zip(source.sources, source._ends, strict=True):
            if index < end:
                return _file_of(part, index - start)
            start = end
    return None


def usable_images(source: Source, note: Any = print, decode: bool = False) -> Source:
    """``source`` without the photos that cannot be read, each skipped with one warning line (``note``).

    ``decode``: load every photo now (with a :class:`CachedSource`, whose cache keeps them: no extra cost);
    otherwise only the headers of file-backed photos are read (truncated pixel data then fails when that
    photo is first drawn). Raises ``ValueError`` when no photo is usable.
    """
    from ..imageio import ImageError, probe_image

    bad: list[int] = []
    for i in range(len(source)):
        try:
            if decode:
                source.load(i)
            elif (found := _file_of(source, i)) is not None:
                probe_image(*found)
        except ImageError as e:
            bad.append(i)
            note(f"warning: skipping {e}")
    if not bad:
        return source
    if len(bad) == len(source):
        raise ValueError(f"no usable image in {source.label} ({len(bad)} skipped, see the warnings above)")
    skip = set(bad)
    return SubsetSource(source, [i for i in range(len(source)) if i not in skip])


class EpochOrder:
    """The global batch order of every epoch, and each rank's share of it (see the module docstring)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if n < 1:
            raise ValueError("cannot draw batches from an empty data set")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch_size={batch_size}, rank={rank}, world_size={world_size}")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), check_seed(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.global_batch = self.batch_size * self.world_size
        self.repeats = -(-self.global_batch // self.n)  # permutations per epoch (1 unless n < G)
        self.steps_per_epoch = (self.repeats * self.n) // self.global_batch
        self._cache: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices of epoch ``epoch`` in visiting order (all ranks together)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        perms = [numpy_rng(self.seed, epoch).permutation(self.n)]
        perms += [numpy_rng(self.seed, epoch, k).permutation(self.n) for k in range(1, self.repeats)]
        order = np.concatenate(perms)
        self._cache = (epoch, order)
        return order

    def batch(self, epoch: int, step: int) -> list[int]:
        """This rank's indices for step ``step`` (``0 <= step < steps_per_epoch``) of ``epoch``."""
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} outside epoch of {self.steps_per_epoch} steps")
        start = step * self.global_batch + self.rank * self.batch_size
        return [int(i) for i in self.order(epoch)[start : start + self.batch_size]]


class EndlessBatchSampler(Sampler):
    """Yields ``[(epoch, index), ...]`` batches forever, starting at ``(epoch, offset)``."""

    def __init__(self, order: EpochOrder, epoch: int, offset: int):
        self.order, self.epoch, self.offset = order, int(epoch), int(offset)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, step = self.epoch, self.offset
        while True:
            if step >= self.order.steps_per_epoch:
                epoch, step = epoch + 1, 0
            yield [(epoch, i) for i in self.order.batch(epoch, step)]
            step += 1

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62


class EpochIndexed(Dataset):
    """``dataset[(epoch, i)]`` = ``dataset.set_epoch(epoch); dataset[i]`` (each worker owns its copy)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if self.dataset.epoch != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class BatchStream:
    """An endless stream of collated ``PairsDataset`` batches with a resumable state.

    Args:
        dataset: a :class:`~oldphoto_bench.data.PairsDataset` (anything with ``set_epoch`` and ``epoch``).
        batch_size: per-process batch size.
        seed: seed of the visiting order (the dataset has its own seed for crops and degradations).
        rank, world_size: this process's shard.
        num_workers: DataLoader worker processes (0: load in this process).
        pin_memory: pin batches (for CUDA).
    """

    def __init__(self, dataset: Any, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, pin_memory: bool = False):
        self.dataset = dataset
        self.order = EpochOrder(len(dataset), batch_size, seed, rank, world_size)
        self.seed = seed
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.epoch, self.offset = 0, 0
        self._iter: Iterator[dict[str, Any]] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return self.order.steps_per_epoch

    def _start(self) -> Iterator[dict[str, Any]]:
        loader = DataLoader(
            EpochIndexed(self.dataset),
            batch_sampler=EndlessBatchSampler(self.order, self.epoch, self.offset),
            collate_fn=collate, num_workers=self.num_workers, pin_memory=self.pin_memory,
            # DataLoader draws a base seed for its workers at every iterator: from our generator, never the
            # global one (the items do not depend on it anyway).
            generator=torch_generator(self.seed),
        )
        return iter(loader)

    def next(self) -> dict[str, Any]:
        """The next batch: ``{"clean", "degraded", "mask": (B, C, h, w), "record": [...]}``."""
        if self._iter is None:
            self._iter = self._start()
        batch = next(self._iter)
        self.offset += 1
        if self.offset >= self.steps_per_epoch:
            self.epoch, self.offset = self.epoch + 1, 0
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._iter = None  # restart the loader at the saved position

    def close(self) -> None:
        self._iter = None  # drops the DataLoader iterator, which shuts its workers down


def to_device(batch: dict[str, Any], device: str | torch.device, channels_last: bool = False
              ) -> dict[str, torch.Tensor]:
    """Move the tensors of a batch to ``device`` (non-blocking from pinned memory)."""
    out = {}
    for key in ("clean", "degraded", "mask"):
        t = batch[key].to(device, non_blocking=True)
        out[key] = t.contiguous(memory_format=torch.channels_last) if channels_last else t
    return out
