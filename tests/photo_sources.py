"""Stand-in photo sources for tests: tensors held in memory behind the :class:`Source` interface."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from oldphoto_bench.data.sources import Sample, Source


class TensorPhotos(Source):
    """``images`` ``(1, 3, H, W)`` in [0, 1] as a source; ``names`` default to ``"0"``, ``"1"``, ..."""

    label = "random"

    def __init__(self, images: Sequence[torch.Tensor], names: Sequence[str] | None = None):
        self.images = list(images)
        self._names = list(names) if names is not None else [str(i) for i in range(len(self.images))]

    def __len__(self) -> int:
        return len(self.images)

    def names(self) -> list[str]:
        return list(self._names)

    def load(self, index: int) -> Sample:
        return Sample(self.images[index], self._names[index], {})
