"""The one table of shipped stages: what each is trained from, in which order, and which networks ship.

Both the export (``oldphoto-bench ship RUNS``, which keeps only ``keep`` of a training checkpoint) and the
retrain (``oldphoto-bench ship --retrain RUNS``, which runs ``train_argv`` in table order) read it.

Data sets are named as in :mod:`oldphoto_bench.data.splits` (paths under the shared data root), so the
retrain trains on exactly the training splits and never on a test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.splits import FACE_TRAIN_SETS, OLD_PHOTO_SETS, TRAIN_SETS

RECIPE = "tiny"
TORN_TRAIN_SETS = tuple(s for s in TRAIN_SETS if s != "clean/mcmaster") + FACE_TRAIN_SETS  # the training recipe of the shipped checkpoints (oldphoto_bench/configs/train/tiny.yaml)


@dataclass(frozen=True)
class ShippedStage:
    """One shipped run folder.

    ``run``: folder under RUNS (``baseline-unet``); ``train``: the ``oldphoto-bench train`` stage and its
    arguments (``("baseline", "unet")``); ``data`` / ``real``: shared data sets for ``--data`` / ``--real``;
    ``keep``: the checkpoint's inference networks (discriminators are left out); ``optional``: inference
    networks kept when the checkpoint has them (a mapping's fine-tuned ``decoder``); ``needs``: runs whose
    checkpoints the stage reads while training (they must be trained first and shipped together).
    """

    run: str
    train: tuple[str, ...]
    data: tuple[str, ...]
    keep: tuple[str, ...]
    real: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()  # recipe overrides (``--set K=V``) of this stage, before the caller's

    @property
    def stage(self) -> str:
        """The training stage name recorded in the checkpoint (``"baseline"`` for both baselines)."""
        return self.train[0]


# Training order: VAE_A starts from VAE_B (model.vae_a_init in the tiny recipe), the mappings read both
# VAEs and train on inputs corrected by the colour stage (data.colour_correct); everything else stands alone.
SHIPPED_STAGES: tuple[ShippedStage, ...] = (
    ShippedStage("vae-b", ("vae-b",), TRAIN_SETS, ("vae",)),
    ShippedStage("vae-a", ("vae-a",), TRAIN_SETS, ("vae",), real=OLD_PHOTO_SETS, needs=("vae-b",)),
    ShippedStage("colour", ("colour",), TRAIN_SETS, ("colour",)),
    ShippedStage("mapping", ("mapping",), TRAIN_SETS, ("mapping",), needs=("vae-a", "vae-b", "colour"),
                 optional=("decoder",)),
    ShippedStage("mapping-no-pn", ("mapping-no-pn",), TRAIN_SETS, ("mapping",), needs=("vae-a", "vae-b", "colour"),
                 optional=("decoder",)),
    ShippedStage("scratch", ("scratch",), TRAIN_SETS, ("detector",)),
    # torn: McMaster is left out, so that the torn-piece detector's threshold and false positives are measured on
    # training-split photos it never saw (benchmarks/torn_detector_probe.py)
    ShippedStage("torn", ("torn",), TORN_TRAIN_SETS, ("detector",)),
    ShippedStage("face", ("face",), FACE_TRAIN_SETS, ("generator",)),
    # pix2pix keeps the 8000 steps it was shipped with (the U-Net alone gets the budget of our stages)
    ShippedStage("baseline-pix2pix", ("baseline", "pix2pix"), TRAIN_SETS, ("generator",),
                 sets=("schedule.steps=8000",)),
    ShippedStage("baseline-unet", ("baseline", "unet"), TRAIN_SETS, ("generator",)),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.run for s in SHIPPED_STAGES)


def shipped_stage(name: str) -> ShippedStage:
    """The table row of run folder ``name``; ``KeyError`` listing the valid names."""
    for s in SHIPPED_STAGES:
        if s.run == name:
            return s
    raise KeyError(f"unknown shipped stage {name!r}; valid names: {', '.join(STAGE_NAMES)}")


def select_stages(names: str | list[str] | tuple[str, ...] | None) -> list[ShippedStage]:
    """Rows for ``"a,b"`` or a list (None: all), in table order; unknown names raise ``KeyError``."""
    if names is None:
        return list(SHIPPED_STAGES)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no stages given; valid names: {', '.join(STAGE_NAMES)}")
    wanted = {shipped_stage(n).run for n in names}
    return [s for s in SHIPPED_STAGES if s.run in wanted]


def present_stages(runs: str | Path) -> list[ShippedStage]:
    """Rows whose ``RUNS/<run>/last.pt`` exists, in table order."""
    from ..train.checkpoint import CHECKPOINT_NAME

    return [s for s in SHIPPED_STAGES if (Path(runs) / s.run / CHECKPOINT_NAME).is_file()]
