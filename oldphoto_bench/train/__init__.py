"""Training of the latent translation and the scratch detector: stages ``vae-a``, ``vae-b``, ``mapping``,
``scratch`` (and later ones) on one interface, with exact resume, run logs and multi-GPU ``torchrun`` support.

    from oldphoto_bench.train import train_stage, load_vae, load_mapping
    train_stage("vae-b", "smoke", runs="runs", data="embedded")
    vae_b = load_vae("runs", "vae-b")

Command line: ``oldphoto-bench train {vae-a,vae-b,mapping,scratch} --config smoke|tiny|paper|FILE.yaml ...``.
"""

from .artifacts import (
    checkpoint_path,
    load_face,
    load_mapping,
    load_scratch,
    load_stage_config,
    load_vae,
    train_command,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .data import BatchStream, EpochOrder
from .ddp import DistInfo, dist_from_env
from .loop import RunExistsError, Trainer, check_data_specs, train_stage
from .recipes import learning_rate, load_recipe, resolve_config, total_steps
from .scratch_stage import evaluate_detector, evaluate_scratch
from .stages import STAGES, Stage, StageContext

__all__ = [
    "STAGES", "BatchStream", "DistInfo", "EpochOrder", "RunExistsError", "Stage", "StageContext", "Trainer",
    "check_data_specs", "checkpoint_path", "dist_from_env", "evaluate_detector", "evaluate_scratch",
    "learning_rate", "load_checkpoint", "load_face", "load_mapping", "load_recipe", "load_scratch",
    "load_stage_config", "load_vae", "resolve_config", "save_checkpoint", "total_steps", "train_command",
    "train_stage",
]
