"""Stages of the benchmark's trained comparisons: the learned baselines and our mapping without its partial
nonlocal block.

``oldphoto-bench train baseline NAME --config CONFIG --data DIR --out RUNS`` trains ``NAME`` into
``RUNS/baseline-NAME/`` (``last.pt``, config, manifest, logs), on the same synthetic pairs as our stages
(``--data`` aged on the fly with ``data.preset``, ``data.crop`` crops, ``data.batch_size``). Both baselines
use the pix2pix U-Net (:class:`~oldphoto_bench.models.baselines.UNetGenerator`, ``model.baseline.generator``);
with ``x`` the degraded crops and ``y`` the clean ones::

    unet      L_G = w_l1 |G(x) - y|_1                                       (direct supervised regression)
    pix2pix   L_G = w_l1 |G(x) - y|_1 + w_gan LSGAN(D(x, G(x)), 1)
              L_D = 0.5 (LSGAN(D(x, y), 1) + LSGAN(D(x, G(x)), 0))          (conditional GAN + L1)

``w_l1 = loss.baseline.l1`` (100, pix2pix's lambda), ``w_gan = loss.baseline.gan``; ``D`` is the 70x70
PatchGAN on ``cat(x, .)`` (6 channels, one scale: ``model.baseline.discriminator``). Deviation from pix2pix:
the least-squares GAN loss (as every adversarial loss of this package) instead of the cross-entropy one.
Budget: the recipes give the baselines as many optimisation steps (or epochs) as our three stages
``vae-a + vae-b + mapping`` together (see ``stages.baseline`` in the recipes).

``oldphoto-bench train mapping-no-pn --config CONFIG --data DIR --out RUNS`` trains the ablation of the
benchmark's ``ours-no-pn``: the latent mapping exactly as stage ``mapping`` (same VAEs from ``RUNS``, same
recipe section) but with ``model.mapping.nonlocal_block: false``, into ``RUNS/mapping-no-pn/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..losses import l1_reconstruction
from ..models import NETWORKS
from ..models.baselines import UNetGenerator
from .adversarial import discriminator_term, generator_terms
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .mapping_stage import MappingStage
from .stages import STAGES, Stage, StageContext

BASELINES = ("pix2pix", "unet")
GENERATOR_NETWORK = "pix2pix_unet"
if GENERATOR_NETWORK not in NETWORKS:  # built from checkpoints like the other networks
    NETWORKS.register(GENERATOR_NETWORK)(UNetGenerator)


def baseline_run_name(name: str) -> str:
    """``"baseline-<name>"``: the folder under RUNS; raises ``KeyError`` listing the valid names."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; valid names: {', '.join(BASELINES)}")
    return f"baseline-{name}"


def baseline_checkpoint(runs: str | Path, name: str) -> Path:
    """``RUNS/baseline-<name>/last.pt``."""
    return Path(runs) / baseline_run_name(name) / CHECKPOINT_NAME


def baseline_train_command(runs: str | Path, name: str) -> str:
    return f"oldphoto-bench train baseline {name} --config CONFIG --data DIR --out {runs}"


def load_baseline(runs: str | Path, name: str, device: str | torch.device = "cpu") -> UNetGenerator:
    """The trained generator of baseline ``name`` (frozen, eval mode, on ``device``)."""
    path = baseline_checkpoint(runs, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train it with `{baseline_train_command(runs, name)}`")
    ckpt = load_checkpoint(path, map_location=device)
    trained = (ckpt.get("config") or {}).get("run", {}).get("stage_args") or []
    if ckpt.get("stage") != "baseline" or list(trained) != [name]:
        raise ValueError(f"{path} holds stage {ckpt.get('stage')!r} {trained}, not baseline [{name!r}]")
    net = NETWORKS.build(ckpt["specs"]["generator"])
    net.load_state_dict(ckpt["models"]["generator"])
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(device).eval()


def _baseline_name(stage_args: Sequence[str]) -> str:
    if len(stage_args) != 1:
        raise ValueError(f"stage baseline takes one argument, the baseline's name ({', '.join(BASELINES)}); "
                         f"got {list(stage_args)}, e.g. `oldphoto-bench train baseline pix2pix --config tiny ...`")
    baseline_run_name(stage_args[0])  # validates
    return stage_args[0]


@STAGES.register("baseline")
class BaselineStage(Stage):
    """pix2pix or U-Net regression on synthetic pairs (see the module docstring)."""

    name = "baseline"
    main_stream = "pairs"

    @staticmethod
    def run_name(stage_args: Sequence[str]) -> str:
        """The run folder under RUNS for these stage arguments (the Trainer asks)."""
        return baseline_run_name(_baseline_name(stage_args))

    def __init__(self, cfg: Mapping[str, Any], ctx: StageContext):
        self.baseline = _baseline_name(ctx.stage_args)
        super().__init__(cfg, dataclasses.replace(ctx, stage_args=()))

    def build(self) -> None:
        cfg = self.cfg
        spec = cfg["model"]["baseline"]
        self.generator = self.add_model("generator", {"type": GENERATOR_NETWORK, **spec["generator"]})
        self.adversarial = self.baseline == "pix2pix"
        if self.adversarial:
            self.discriminator = self.add_model("discriminator", {"type": "multiscale_patchgan", "in_channels": 6,
                                                                  **spec["discriminator"]})
        if self.ctx.real:
            self.ctx.note("note: --real is not used by the baselines (they learn from synthetic pairs)")
        data = cfg["data"]
        crop = int(data["crop"])
        if crop % self.models["generator"].multiple:
            self.ctx.note(f"note: crops of {crop} px are padded to a multiple of "
                          f"{self.models['generator'].multiple} inside the U-Net")
        ds = self.synthetic_pairs(self.ctx.data, 6, crop=crop)
        self.add_stream("pairs", ds, int(data["batch_size"]))
        self.extra["baseline"] = self.baseline

    def train_step(self, step: int) -> dict[str, float]:
        w = self.cfg["loss"]["baseline"]
        batch = self.next_batch("pairs")
        x, y = batch["degraded"], batch["clean"]
        self.models["generator"].set_generator(self.noise_generator(step))  # dropout masks
        with self.precision.autocast():
            fake = self.generator(x)
            losses = {"l1": float(w["l1"]) * l1_reconstruction(fake.float(), y.float())}
            if self.adversarial:
                gan, _ = generator_terms(self.discriminator, torch.cat([x, y], 1), torch.cat([x, fake], 1), 0.0)
                losses["g_gan"] = float(w["gan"]) * gan
            total = sum(losses.values())
        self.precision.step(total, self.optimizers["generator"])
        result = {k: v.detach().item() for k, v in losses.items()}
        if self.adversarial:
            with self.precision.autocast():
                d_loss = discriminator_term(self.discriminator, torch.cat([x, y], 1), torch.cat([x, fake], 1))
            self.precision.step(d_loss, self.optimizers["discriminator"])
            result["d"] = d_loss.detach().item()
        result["total"] = total.detach().item()
        return result


@STAGES.register("mapping-no-pn")
class MappingNoPNStage(MappingStage):
    """Stage ``mapping`` with ``model.mapping.nonlocal_block: false`` (the ``ours-no-pn`` ablation)."""

    def build(self) -> None:
        if self.cfg["model"]["mapping"].get("nonlocal_block", True):
            raise ValueError("mapping-no-pn trains the mapping without the partial nonlocal block: set "
                             "stages.mapping-no-pn.model.mapping.nonlocal_block to false in the recipe (the "
                             "shipped ones do) or pass --set model.mapping.nonlocal_block=false")
        super().build()
