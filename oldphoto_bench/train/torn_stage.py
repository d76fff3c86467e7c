"""Stage ``torn``: a whole-photo detector for torn-off pieces and holes (not in the paper).

The scratch detector works on full-resolution tiles and never finds the inside of a torn-off piece: a flat,
paper-coloured region tens of pixels wide looks like any bright, flat part of a photo unless the whole photo
is seen. Yet those pieces are where a damage mask is worth most: with the synthesizer's ground-truth mask
instead of none, on held-out McMaster photos with one kind of damage forced on every photo, the translation
gains +2.78 dB for torn pieces against +0.19 (scratches), +0.35 (cracks) and +0.23 (dust).

This stage trains a small U-Net (:class:`~oldphoto_bench.models.ScratchUNet`, RGB) on whole photos shrunk to
``data.torn.size`` pixels square. Each item is a training photo at ``data.torn.side`` pixels (longer side),
aged whole with ``data.preset`` whose ``torn`` group fires with probability ``data.torn.torn_p`` (the paper
preset has 0.15; more positives train faster), then thumbnailed with its damage mask
(:class:`~.colour_stage.AgedThumbnails`: the mask keeps the thumbnail pixels at least half damaged, which
are torn pieces and the widest cracks). ``data.clean_fraction`` of the photos are left unaged, so bright,
flat skies and studio backgrounds are seen as undamaged. Per step::

    x = thumbnail(aged photo)          (N, 3, size, size) in [0, 1]
    t = thumbnail(mask) >= 0.5         (N, 1, size, size) in {0, 1}
    L = focal(U(x), t) + w_dice * Dice(sigmoid(U(x)), t)          (loss.scratch, :class:`ScratchLoss`)

The checkpoint keeps the thumbnail size and the detection threshold ``data.torn.threshold`` (``extra``);
:mod:`oldphoto_bench.restore.torn` applies it and the restore pipeline unites its mask with the scratch
detector's.
"""

from __future__ import annotations

import copy
from typing import Any

from ..degrade.presets import load_preset
from ..losses.segmentation import ScratchLoss
from .colour_stage import AgedThumbnails
from .stages import STAGES, Stage

TORN_NETWORK = "scratch_unet"
DEFAULT_TORN = {"side": 512, "size": 96, "torn_p": 0.5, "threshold": 0.8}  # the tiny recipe's


def torn_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """``data.torn`` over :data:`DEFAULT_TORN`, checked: ``size`` a multiple of the U-Net's ``2**depth``."""
    out = {**DEFAULT_TORN, **(cfg["data"].get("torn") or {})}
    if not 0.0 <= float(out["torn_p"]) <= 1.0 or not 0.0 < float(out["threshold"]) < 1.0:
        raise ValueError(f"data.torn.torn_p must be in [0, 1] and threshold in (0, 1), got {out}")
    if int(out["side"]) < int(out["size"]):
        raise ValueError(f"data.torn.side ({out['side']}) must be at least data.torn.size ({out['size']})")
    return out


def preset_with_torn_p(preset: Any, torn_p: float) -> dict[str, Any]:
    """``preset`` (a name, path or mapping) with its ``torn`` group's probability set to ``torn_p``; a preset
    without such a group raises ``KeyError``."""
    spec = copy.deepcopy(dict(preset)) if isinstance(preset, dict) else load_preset(preset)
    groups = [g for stage in spec["stages"] for g in stage["groups"] if g.get("name") == "torn"]
    if not groups:
        raise KeyError(f"preset {spec.get('name')!r} has no group named 'torn' to set the probability of")
    for group in groups:
        group["p"] = float(torn_p)
    spec["name"] = f"{spec.get('name', 'preset')}-torn{float(torn_p):g}"
    return spec


@STAGES.register("torn")
class TornStage(Stage):
    """Trains the whole-photo torn-piece detector on thumbnails of photos aged whole."""

    name = "torn"
    main_stream = "photos"

    def build(self) -> None:
        cfg = self.cfg
        data, settings = cfg["data"], torn_settings(cfg)
        spec = dict(cfg["model"]["torn"])
        self.detector = self.add_model("detector", {"type": TORN_NETWORK, **spec})
        net = self.models["detector"]
        size = int(settings["size"])
        if size % net.multiple or size < net.min_size:
            raise ValueError(f"data.torn.size must be a multiple of {net.multiple} and at least {net.min_size} "
                             f"for this detector, got {size}")
        if net.in_channels != 3:
            raise ValueError(f"model.torn.in_channels must be 3 (torn pieces are told by colour), got "
                             f"{net.in_channels}")
        if self.ctx.real:
            self.ctx.note("note: --real is not used by torn (real old photos have no damage labels)")
        self.loss = ScratchLoss(**cfg["loss"]["scratch"])
        ds = AgedThumbnails(self.open_source(self.ctx.data), preset_with_torn_p(data["preset"], settings["torn_p"]),
                            size, int(settings["side"]), self.dataset_seed(9), gray_target=False,
                            clean_fraction=float(data.get("clean_fraction", 0.0)),
                            reuse=int(data.get("photo_reuse", 1)))
        self.add_stream("photos", ds, int(data["batch_size"]))
        self.extra.update(size=size, threshold=float(settings["threshold"]))

    def train_step(self, step: int) -> dict[str, float]:
        batch = self.next_batch("photos")
        x, target = batch["degraded"].contiguous(), batch["mask"]
        with self.precision.autocast():
            logits = self.detector(x)
        terms = self.loss.terms(logits.float(), target.float())
        self.precision.step(terms["total"], self.optimizers["detector"])
        out = {k: v.detach().item() for k, v in terms.items()}
        out["positive"] = float(target.float().mean())
        return out
