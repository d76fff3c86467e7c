"""Trained networks out of a runs folder, for the restore pipeline, the latent-gap tool and later stages.

    runs/
      vae-a/last.pt  config.yaml  manifest.json  log.csv  run.log  tb/
      vae-b/...
      mapping/...
      scratch/...  eval.json
      torn/...
      face/...  face_crops/ (aligned training faces, reused by later runs)

Each checkpoint stores the constructor config of its networks next to their weights, so loading needs no
config file and cannot silently build a different architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from ..faces.enhancer import SPADEFaceGenerator
from ..models import NETWORKS, VAE, MappingNetwork, ScratchUNet
from .checkpoint import CHECKPOINT_NAME, load_checkpoint

VAE_STAGES = ("vae-a", "vae-b")


def train_command(runs: str | Path, stage: str) -> str:
    """The command that trains ``stage`` into ``runs`` (for error messages)."""
    data = " --data DIR" + (" --real DIR" if stage == "vae-a" else "")
    return f"oldphoto-bench train {stage} --config CONFIG --out {runs}{data}"


def checkpoint_path(runs: str | Path, stage: str) -> Path:
    """``runs/<stage>/last.pt``."""
    return Path(runs) / stage / CHECKPOINT_NAME


def _load(runs: str | Path, stage: str, device: str | torch.device) -> tuple[dict[str, Any], Path]:
    path = checkpoint_path(runs, stage)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train it first with `{train_command(runs, stage)}`")
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt.get("stage") != stage:
        raise ValueError(f"{path} holds stage {ckpt.get('stage')!r}, not {stage!r}")
    return ckpt, path


def _network(ckpt: dict[str, Any], path: Path, runs: str | Path, stage: str, name: str,
             device: str | torch.device) -> torch.nn.Module:
    try:
        spec, state = ckpt["specs"][name], ckpt["models"][name]
    except KeyError:
        raise ValueError(f"{path} has no network {name!r}; retrain with `{train_command(runs, stage)}`") from None
    net = NETWORKS.build(spec)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights of {name!r} do not match its recorded architecture "
                         f"({str(e).splitlines()[0]}); retrain with `{train_command(runs, stage)}`") from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(device).eval()


def load_vae(runs: str | Path, stage: str, device: str | torch.device = "cpu") -> VAE:
    """The trained VAE of ``stage`` (``"vae-a"`` or ``"vae-b"``), frozen, in eval mode, on ``device``."""
    if stage not in VAE_STAGES:
        raise KeyError(f"unknown VAE stage {stage!r}; valid names: {', '.join(VAE_STAGES)}")
    ckpt, path = _load(runs, stage, device)
    return _network(ckpt, path, runs, stage, "vae", device)


def load_mapping(runs: str | Path, device: str | torch.device = "cpu") -> MappingNetwork:
    """The trained latent mapping network, frozen, in eval mode, on ``device``."""
    ckpt, path = _load(runs, "mapping", device)
    return _network(ckpt, path, runs, "mapping", "mapping", device)


def load_output_vae(runs: str | Path, device: str | torch.device = "cpu", stage: str = "mapping") -> VAE:
    """The VAE whose decoder turns mapped latents into photos, frozen, in eval mode: the copy of VAE_B that
    ``stage`` fine-tuned with its mapping (``model.mapping_decoder: finetune``, saved as its network
    ``decoder``) when it has one, else VAE_B itself (the paper)."""
    ckpt, path = _load(runs, stage, device)
    if "decoder" in ckpt.get("specs", {}):
        return _network(ckpt, path, runs, stage, "decoder", device)
    return load_vae(runs, "vae-b", device)


def load_scratch(runs: str | Path, device: str | torch.device = "cpu") -> ScratchUNet:
    """The trained scratch detector (``runs/scratch/last.pt``), frozen, in eval mode, on ``device``; its
    ``calibrated_threshold`` is the threshold calibrated after training (None for older checkpoints)."""
    ckpt, path = _load(runs, "scratch", device)
    net = _network(ckpt, path, runs, "scratch", "detector", device)
    net.calibrated_threshold = _threshold(ckpt)
    return net


def _threshold(ckpt: dict[str, Any]) -> float | None:
    value = (ckpt.get("extra") or {}).get("threshold")
    return None if value is None else float(value)


def load_colour(runs: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained global colour correction (``runs/colour/last.pt``), frozen, in eval mode, on ``device``."""
    from . import colour_stage  # noqa: F401  (registers the network type)

    ckpt, path = _load(runs, "colour", device)
    return _network(ckpt, path, runs, "colour", "colour", device)


def load_scratch_threshold(runs: str | Path) -> float | None:
    """The detection threshold calibrated when ``runs/scratch`` was trained (``extra.threshold``), or None
    for a checkpoint trained before calibration existed."""
    return _threshold(_load(runs, "scratch", "cpu")[0])


def load_face(runs: str | Path, device: str | torch.device = "cpu") -> SPADEFaceGenerator:
    """The trained face enhancer (``runs/face/last.pt``), frozen, in eval mode, on ``device``; its ``size`` is
    the face size it was trained at."""
    from . import face_stage  # noqa: F401  (registers the generator's network type)

    ckpt, path = _load(runs, "face", device)
    return _network(ckpt, path, runs, "face", "generator", device)


def load_torn(runs: str | Path, device: str | torch.device = "cpu") -> ScratchUNet:
    """The trained torn-piece detector (``runs/torn/last.pt``), frozen, in eval mode, on ``device``; its
    ``thumbnail_size`` and ``calibrated_threshold`` come from the checkpoint (see :mod:`.torn_stage`)."""
    ckpt, path = _load(runs, "torn", device)
    net = _network(ckpt, path, runs, "torn", "detector", device)
    extra = ckpt.get("extra") or {}
    if "size" not in extra or "threshold" not in extra:
        raise ValueError(f"{path} lacks its thumbnail size or threshold; retrain with `{train_command(runs, 'torn')}`")
    net.thumbnail_size, net.calibrated_threshold = int(extra["size"]), float(extra["threshold"])
    return net


def load_stage_config(runs: str | Path, stage: str) -> dict[str, Any]:
    """The resolved config a stage was trained with (``runs/<stage>/config.yaml``)."""
    path = Path(runs) / stage / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train it first with `{train_command(runs, stage)}`")
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} is not a mapping")
    return cfg
