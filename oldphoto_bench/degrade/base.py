"""The contract every degradation operation follows.

An operation is split in two so that every sample can be recorded and replayed bit for bit:

* ``sample(rng, height, width) -> params``: draws *all* random choices as a JSON-serializable dict from a
  numpy Generator. Random *fields* (noise, scratch paths, textures) are not stored; instead ``params``
  holds an integer ``"seed"`` from which ``apply`` regenerates them with a CPU ``torch.Generator``.
* ``apply(image, params) -> (image, mask)``: deterministic given ``params``. ``image`` is
  ``(1, 3, H, W)`` float32 RGB in ``[0, 1]`` on any device; the result has the same shape, dtype, device
  and range. ``mask`` is ``None`` for unstructured/global ops; structured defects return a
  ``(1, 1, H, W)`` bool tensor that is True exactly at the pixels they changed (pixels where it is False
  are bit-identical to the input).

Constructor arguments are the ranges that ``sample`` draws from; defaults cite their source.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..registry import Registry

OPS = Registry("degradation op")


def uniform(rng: np.random.Generator, lo_hi: tuple[float, float] | list[float]) -> float:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return float(rng.uniform(lo, hi)) if hi > lo else lo


def randint(rng: np.random.Generator, lo_hi: tuple[int, int] | list[int]) -> int:
    """Integer in the closed range ``[lo, hi]``."""
    lo, hi = int(lo_hi[0]), int(lo_hi[1])
    return int(rng.integers(lo, hi + 1))


def field_seed(rng: np.random.Generator) -> int:
    """A seed for an op's random fields, stored in its params."""
    return int(rng.integers(0, 2**62))


class DegradationOp:
    """Base class. Subclasses set ``name`` and ``structured`` and implement ``sample`` and ``apply``."""

    name: ClassVar[str] = "op"
    structured: ClassVar[bool] = False  # True: apply returns a damage mask

    def sample(self, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The ``type:`` + constructor arguments that rebuild this op (for records and manifests)."""
        args = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items() if not k.startswith("_")}
        return {"type": self.name, **args}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expected a (N, 3, H, W) float tensor, got {shape}")
    if image.dtype != torch.float32:
        raise TypeError(f"expected float32 image, got {image.dtype}")
