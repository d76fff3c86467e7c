"""Training stages: a registry of named stages sharing one interface, run by :class:`~.loop.Trainer`.

A stage builds its networks, optimizers and data streams from the resolved config and a
:class:`StageContext`, and defines one training step returning a dict of float losses::

    @STAGES.register("my-stage")
    class MyStage(Stage):
        requires = ("vae-b",)            # stages whose checkpoints it reads (for error messages)
        main_stream = "pairs"            # whose epoch is logged and counts schedule.epochs

        def build(self):
            net = self.add_model("net", {"type": "vae", ...})        # saved, trained, DDP-wrapped
            self.add_stream("pairs", PairsDataset(...), batch_size)
        def train_step(self, step):
            batch = self.next_batch("pairs")
            with self.precision.autocast():
                loss = ...
            self.precision.step(loss, self.optimizers["net"])
            return {"loss": float(loss)}

The base class saves and restores every model, optimizer, stream position and generator it was given,
so a stage gets exact ``--resume`` for free. Later issues register ``scratch``, ``face``, ``baseline``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import NETWORKS
from ..registry import Registry
from ..seeding import derive_seed, torch_generator
from .data import BatchStream, CachedSource, to_device, usable_images
from .ddp import DistInfo, unwrap, wrap
from .precision import Precision

STAGES = Registry("training stage")

# Sub-keys of derive_seed(seed, KEY, ...): one independent stream per use.
SEED_INIT, SEED_DATA, SEED_ORDER, SEED_NOISE = 1, 2, 3, 4


@dataclass
class StageContext:
    """What a stage needs besides its config: where runs live, data specs, device and process layout."""

    runs: Path
    data: str
    real: str | None = None
    device: str = "cpu"
    dist: DistInfo = field(default_factory=DistInfo)
    stage_args: tuple[str, ...] = ()
    note: Callable[[str], None] = print  # one line for the run log (the Trainer sets this)


class Stage:
    """Base class of training stages; see the module docstring."""

    name: str = "stage"
    requires: tuple[str, ...] = ()
    main_stream: str = ""

    def __init__(self, cfg: Mapping[str, Any], ctx: StageContext):
        self.cfg, self.ctx = cfg, ctx
        self.seed = int(cfg["seed"])
        self.device = ctx.device
        optim = cfg["optim"]
        self.precision = Precision(ctx.device, optim.get("amp", "auto"), optim.get("channels_last", True))
        self.models: dict[str, nn.Module] = {}  # trained and saved (unwrapped)
        self.wrapped: dict[str, nn.Module] = {}  # the same, DistributedDataParallel-wrapped under torchrun
        self.specs: dict[str, dict[str, Any]] = {}  # constructor configs, saved for artifacts.load_*
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.lr_scales: dict[str, float] = {}  # optimizer name -> factor on the scheduled lr (default 1)
        self.streams: dict[str, BatchStream] = {}
        # reparameterisation noise; see noise_generator
        self.generators: dict[str, torch.Generator] = {"noise": torch_generator(derive_seed(self.seed, SEED_NOISE))}
        self.extra: dict[str, Any] = {}  # facts for the manifest and checkpoint (e.g. VGG used or not)
        if ctx.stage_args:
            raise ValueError(f"stage {self.name!r} takes no extra arguments, got {list(ctx.stage_args)}")
        self.build()
        if self.main_stream not in self.streams:
            raise RuntimeError(f"stage {self.name!r} did not add its main stream {self.main_stream!r}")

    # ---- to implement -------------------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def train_step(self, step: int) -> dict[str, float]:
        """Run training step ``step`` (0-based) and return its losses as floats."""
        raise NotImplementedError

    # ---- helpers ------------------------------------------------------------------------------------------
    def add_model(self, name: str, spec: Mapping[str, Any], trainable: bool = True) -> nn.Module:
        """Build ``spec`` (``{"type": ..., **kwargs}``, a :data:`~oldphoto_bench.models.NETWORKS` entry) with a
        seeded init, move it to the device, wrap it for DDP and give it an Adam optimizer.

        Returns the wrapped module (call it for training forwards); ``self.models[name]`` is the bare one.
        """
        spec = {**spec, "init_seed": derive_seed(self.seed, SEED_INIT, len(self.specs))}
        module = self.precision.prepare(NETWORKS.build(spec))
        self.models[name], self.specs[name] = module, spec
        self.wrapped[name] = wrap(module, self.ctx.dist, self.device) if trainable else module
        if trainable:
            optim = self.cfg["optim"]
            self.optimizers[name] = torch.optim.Adam(module.parameters(), lr=float(optim["lr"]),
                                                     betas=tuple(float(b) for b in optim["betas"]))
        return self.wrapped[name]

    def add_stream(self, name: str, dataset: Any, batch_size: int) -> BatchStream:
        data = self.cfg["data"]
        stream = BatchStream(dataset, batch_size, derive_seed(self.seed, SEED_ORDER, len(self.streams)),
                             rank=self.ctx.dist.rank, world_size=self.ctx.dist.world_size,
                             num_workers=int(data.get("num_workers", 0)),
                             pin_memory=self.device.startswith("cuda"))
        self.streams[name] = stream
        return stream

    def open_source(self, spec: str) -> Any:
        """``data.open_source(spec)``, kept decoded in memory when ``data.cache_images`` is true; photos that
        cannot be read are skipped with a warning (see :func:`~.data.usable_images`)."""
        from ..data import open_source

        source = open_source(spec)
        if self.cfg["data"].get("cache_images", False):
            return usable_images(CachedSource(source), self.ctx.note, decode=True)
        return usable_images(source, self.ctx.note)

    def synthetic_pairs(self, spec: str, key: int, crop: int | None = None) -> Any:
        """Training pairs of clean photos ``spec`` aged with ``data.preset``, with the recipe's ageing scope
        (``data.degrade_scope``, ``data.photo_reuse``), ``data.gray_target`` and ``data.clean_fraction``; see
        :class:`PairsDataset`."""
        from ..data import PairsDataset

        data = self.cfg["data"]
        return PairsDataset(self.open_source(spec), data["preset"], crop=int(crop or data["crop"]), train=True,
                            seed=self.dataset_seed(key), degrade_scope=str(data.get("degrade_scope", "crop")),
                            photo_reuse=int(data.get("photo_reuse", 1)),
                            gray_target=bool(data.get("gray_target", False)),
                            clean_fraction=float(data.get("clean_fraction", 0.0)))

    def dataset_seed(self, key: int) -> int:
        return derive_seed(self.seed, SEED_DATA, key)

    def noise_generator(self, step: int) -> torch.Generator:
        """The reparameterisation generator, reseeded from ``(seed, rank, step)`` at every step.

        Reseeding makes each step's noise independent of how the run was split into processes and
        resumes; the generator state is saved with the checkpoint all the same.
        """
        g = self.generators["noise"]
        g.manual_seed(derive_seed(self.seed, SEED_NOISE, self.ctx.dist.rank, step))
        return g

    def next_batch(self, stream: str) -> dict[str, torch.Tensor]:
        return to_device(self.streams[stream].next(), self.device, self.precision.channels_last)

    @staticmethod
    def set_trainable(module: nn.Module, flag: bool) -> None:
        for p in unwrap(module).parameters():
            p.requires_grad_(flag)

    def set_lr(self, lr: float) -> None:
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = lr * self.lr_scales.get(name, 1.0)

    @property
    def epoch(self) -> int:
        return self.streams[self.main_stream].epoch

    @property
    def steps_per_epoch(self) -> int:
        return self.streams[self.main_stream].steps_per_epoch

    # ---- state --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        from .checkpoint import generator_states

        return {
            "specs": self.specs,
            "models": {k: m.state_dict() for k, m in self.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.precision.scaler.state_dict(),
            "streams": {k: s.state_dict() for k, s in self.streams.items()},
            "generators": generator_states(self.generators),
            "extra": self.extra,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        from .checkpoint import restore_generators

        for group in ("models", "optimizers", "streams"):
            have, saved = set(getattr(self, group)), set(state[group])
            if have != saved:
                raise ValueError(f"checkpoint {group} {sorted(saved)} do not match this run's {sorted(have)}; "
                                 "was it trained with another config (e.g. model.latent_adversarial or --real)?")
        for k, m in self.models.items():
            try:
                m.load_state_dict(state["models"][k])
            except RuntimeError as e:
                raise ValueError(f"checkpoint network {k!r} does not fit this config: {str(e).splitlines()[0]}"
                                 ) from None
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.streams.items():
            s.load_state_dict(state["streams"][k])
        self.precision.scaler.load_state_dict(state["scaler"])
        restore_generators(self.generators, state["generators"])

    def close(self) -> None:
        for s in self.streams.values():
            s.close()
