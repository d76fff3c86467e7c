"""Stage ``scratch``: the scratch detector (a U-Net, :class:`~oldphoto_bench.models.ScratchUNet`) on synthetic
pairs.

The released detector's training code was never published; this stage trains it on the synthesizer's
structured defects, whose masks are pixel-exact labels. Per step, on a batch of crops of ``--data`` aged
with the ``data.preset`` synthesizer (the ``scratch`` preset by default: structured defects on nearly every
photo), with the recipe's ``data.degrade_scope``, ``data.photo_reuse`` and ``data.clean_fraction`` (see
:meth:`~.stages.Stage.synthetic_pairs`)::

    x = luma(degraded)          (N, 1, h, w) in [0, 1], Y = 0.299 R + 0.587 G + 0.114 B
    t = mask                    (N, 1, h, w) in {0, 1}: scratches, cracks, creases, dust, tears
    L = focal(U(x), t) + w_dice * Dice(sigmoid(U(x)), t)          (loss.scratch, :class:`ScratchLoss`)

After the last step it evaluates the detector on held-back synthetic pairs (new damage drawn with another
seed on centre crops, ``data.scratch_eval``) and writes precision, recall, F1, IoU and ROC AUC at the
detection threshold to ``RUNS/scratch/eval.json`` and the run log, then calibrates the threshold on more
held-back crops of the training photos for a false-positive budget (:mod:`.scratch_calibration`,
``data.scratch_eval.max_false_positive``); the checkpoint keeps it (``extra.threshold``) and the restore
pipeline uses it. :func:`evaluate_scratch` evaluates a trained checkpoint on any source (e.g. the test sets).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..data import collate
from ..losses.segmentation import ScratchLoss
from ..models import DETECTION_THRESHOLD, to_detector_input
from ..provenance import atomic_write_bytes
from ..seeding import derive_seed
from ..segmentation_metrics import MaskMetrics
from .recipes import total_steps
from .scratch_calibration import DEFAULT_MAX_FALSE_POSITIVE, calibrate_threshold, held_back_items
from .stages import STAGES, Stage

EVAL_FILE = "eval.json"
SEED_EVAL = 5  # derive_seed(seed, SEED_EVAL, ...): the held-back damage (training uses SEED_DATA)
DEFAULT_EVAL = {"images": 16, "crop": 128, "max_false_positive": DEFAULT_MAX_FALSE_POSITIVE}


def _eval_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {**DEFAULT_EVAL, **(cfg["data"].get("scratch_eval") or {})}


@torch.no_grad()
def evaluate_detector(
    model: torch.nn.Module,
    source: Any,
    n: int = 16,
    seed: int = 0,
    preset: Any = "scratch",
    crop: int = 128,
    threshold: float = DETECTION_THRESHOLD,
    device: str = "cpu",
    batch_size: int = 4,
) -> dict[str, Any]:
    """Pixel metrics of ``model`` on ``n`` synthetic pairs: centre crops of ``source`` (a Source or a spec
    such as ``"embedded"``), damaged with ``preset``.

    Pass ``k`` of the photos uses the evaluation-mode :class:`PairsDataset` seeded ``derive_seed(seed, k)``,
    so more pairs than photos means the same crops with new damage. Pixels are pooled over all pairs
    (:class:`MaskMetrics`): ``{"precision", "recall", "f1", "iou", "auc", "threshold", "pixels",
    "positive_fraction", "images", "seed", "crop", "preset"}``.
    """
    if isinstance(source, str):
        from ..data import open_source

        source = open_source(source)
    was_training = model.training
    model.eval()
    metrics = MaskMetrics(threshold)
    items = held_back_items(source, preset, n, seed, crop)
    try:
        for s in range(0, n, batch_size):
            batch = collate(items[s : s + batch_size])
            x = to_detector_input(batch["degraded"], getattr(model, "in_channels", 1)).to(device)
            prob = model.predict_proba(x).float().cpu()
            metrics.update(prob, batch["mask"])
    finally:
        model.train(was_training)
    out = metrics.compute()
    preset_name = preset if isinstance(preset, str) else getattr(preset, "name", str(preset))
    out.update(images=n, seed=seed, crop=crop, preset=preset_name)
    return out


def _write_eval(path: Path, result: Mapping[str, Any]) -> None:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    atomic_write_bytes(path, (json.dumps(clean, indent=2) + "\n").encode())


def evaluate_scratch(
    runs: str | Path,
    source: Any = None,
    n: int | None = None,
    seed: int | None = None,
    threshold: float = DETECTION_THRESHOLD,
    device: str = "cpu",
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate the trained detector of ``runs/scratch/last.pt`` (see :func:`evaluate_detector`).

    Defaults come from the run's config: ``source`` = its ``--data``, ``n`` and the crop from
    ``data.scratch_eval``, the preset from ``data.preset``, ``seed`` = the held-back seed the stage used.
    ``write=True`` writes the result to ``runs/scratch/eval.json``.
    """
    from .artifacts import load_scratch, load_stage_config

    cfg = load_stage_config(runs, "scratch")
    settings = _eval_settings(cfg)
    model = load_scratch(runs, device)
    result = evaluate_detector(
        model,
        source if source is not None else cfg["run"]["data"],
        int(n or settings["images"]),
        derive_seed(int(cfg["seed"]), SEED_EVAL) if seed is None else int(seed),
        cfg["data"]["preset"],
        int(settings["crop"]),
        threshold,
        device,
    )
    result["source"] = str(source if source is not None else cfg["run"]["data"])
    if write:
        _write_eval(Path(runs) / "scratch" / EVAL_FILE, result)
    return result


@STAGES.register("scratch")
class ScratchStage(Stage):
    """Trains the scratch U-Net on luma crops of synthetic old photos against their damage masks."""

    main_stream = "pairs"

    def build(self) -> None:
        cfg = self.cfg
        self.detector = self.add_model("detector", {"type": "scratch_unet", **cfg["model"]["scratch"]})
        self.loss = ScratchLoss(**cfg["loss"]["scratch"])
        data = cfg["data"]
        multiple = self.models["detector"].min_size
        if int(data["crop"]) % self.models["detector"].multiple or int(data["crop"]) < multiple:
            raise ValueError(
                f"data.crop must be a multiple of {self.models['detector'].multiple} and at least "
                f"{multiple} for this detector, got {data['crop']}"
            )
        if self.ctx.real:
            self.ctx.note("note: --real is not used by scratch (real old photos have no scratch labels)")
        self.source = self.open_source(self.ctx.data)
        # the recipe's ageing scope, photo reuse and undamaged share, as for the other stages
        self.add_stream("pairs", self.synthetic_pairs(self.ctx.data, 4), int(data["batch_size"]))

    def train_step(self, step: int) -> dict[str, float]:
        batch = self.next_batch("pairs")
        x, target = to_detector_input(batch["degraded"], self.models["detector"].in_channels), batch["mask"]
        with self.precision.autocast():
            logits = self.detector(x)
        terms = self.loss.terms(logits.float(), target.float())
        self.precision.step(terms["total"], self.optimizers["detector"])
        if step + 1 == total_steps(self.cfg, self.steps_per_epoch):
            self.evaluate()
        return {k: v.detach().item() for k, v in terms.items()}

    def evaluate(self) -> dict[str, Any] | None:
        """Held-back evaluation after the last step: ``eval.json`` and a run-log line (main process only)."""
        if not self.ctx.dist.is_main:
            return None
        settings = _eval_settings(self.cfg)
        result = evaluate_detector(
            self.models["detector"],
            self.source,
            int(settings["images"]),
            derive_seed(self.seed, SEED_EVAL),
            self.cfg["data"]["preset"],
            int(settings["crop"]),
            DETECTION_THRESHOLD,
            self.device,
        )
        result["source"] = self.ctx.data
        calibration = calibrate_threshold(
            self.models["detector"], self.source, self.cfg["data"]["preset"], 2 * int(settings["images"]),
            derive_seed(self.seed, SEED_EVAL, 1), int(settings["crop"]),
            float(settings["max_false_positive"]), self.device,
        )
        result["calibration"] = calibration
        self.extra["threshold"] = calibration["threshold"]
        self.extra["calibration"] = calibration
        _write_eval(Path(self.ctx.runs) / "scratch" / EVAL_FILE, result)
        self.ctx.note(
            f"scratch threshold calibrated on held-back training crops: {calibration['threshold']:.2f} "
            f"(false positives {100 * calibration['false_positive']:.2f}% of undamaged pixels, budget "
            f"{100 * calibration['max_false_positive']:.2f}%; F1 {calibration['f1']:.3f}; at the released 0.4: "
            f"false positives {100 * calibration['released']['false_positive']:.2f}%, "
            f"F1 {calibration['released']['f1']:.3f})"
        )
        self.ctx.note(
            f"scratch eval on {result['images']} held-back synthetic pairs ({result['crop']} px, new "
            f"damage): F1 {result['f1']:.3f}, IoU {result['iou']:.3f}, AUC {result['auc']:.3f} at "
            f"threshold {result['threshold']}"
        )
        return result
