"""Multi-process training with ``torchrun``: rank detection, process groups, DistributedDataParallel wrapping.

``torchrun --nproc_per_node K -m oldphoto_bench.cli train ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; a plain ``python -m oldphoto_bench.cli train ...`` leaves them unset and everything here is
a no-op (world size 1). Backend: NCCL on CUDA, gloo on CPU. Only rank 0 writes files (``DistInfo.is_main``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` in ``[0, world_size)``, ``local_rank`` on its machine."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env(env: dict[str, str] | None = None) -> DistInfo:
    """Read ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` (as set by torchrun); absent means one process."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", str(rank)))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(rank=rank, local_rank=local, world_size=world)


def init_distributed(device: str) -> tuple[DistInfo, str]:
    """Start the process group when launched by torchrun; returns ``(info, this process's device)``.

    ``device`` is ``"cpu"`` or ``"cuda"``; on CUDA each process takes GPU ``LOCAL_RANK``.
    """
    info = dist_from_env()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    if device.startswith("cuda") and info.enabled:
        device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info, device


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, info: DistInfo, device: str) -> nn.Module:
    """``module`` itself (one process) or a ``DistributedDataParallel`` around it.

    Discriminators are called through their unwrapped module (with ``requires_grad`` off) in the generator
    step and through the wrapper in their own step, so every wrapped parameter gets a gradient in every
    backward through the wrapper and no unused-parameter search is needed.
    """
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def mean_over_ranks(values: dict[str, float], info: DistInfo, device: str) -> dict[str, float]:
    """Average scalar logs over all ranks (every rank must call this at the same steps)."""
    if not info.enabled or not values:
        return dict(values)
    keys = list(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}


def all_ranks_ok(ok: bool, info: DistInfo, device: str) -> bool:
    """True when ``ok`` holds on every rank (a collective: used so that one rank's refusal stops all)."""
    if not info.enabled:
        return ok
    t = torch.tensor([0 if ok else 1], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return int(t.item()) == 0
