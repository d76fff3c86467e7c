"""Seeds and generators. No function in the library uses global random state.

A *seed* is a non-negative Python int. Child seeds are derived with numpy's ``SeedSequence`` so that
``derive_seed(seed, i)`` gives independent, reproducible streams for sample ``i`` of a data set or
operation ``k`` of a degradation record.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_SEED = 2**63 - 1


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**63 - 1], got {seed}")
    return seed


def derive_seed(seed: int, *keys: int) -> int:
    """A child seed of ``seed`` for the path ``keys`` (ints), stable across platforms and versions."""
    ss = np.random.SeedSequence([check_seed(seed), *[int(k) for k in keys]])
    return int(ss.generate_state(1, dtype=np.uint64)[0] & MAX_SEED)


def numpy_rng(seed: int, *keys: int) -> np.random.Generator:
    """A numpy Generator (PCG64) for ``seed`` and optional sub-keys."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([check_seed(seed), *map(int, keys)])))


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch Generator seeded with ``seed`` (on CPU by default: CPU draws are identical everywhere)."""
    g = torch.Generator(device=device)
    g.manual_seed(check_seed(seed))
    return g
