"""Stage ``colour``: the global colour correction (:class:`~oldphoto_bench.models.colour.GlobalColourNet`).

Each item is a whole training photo, shrunk so that its longer side is ``data.colour_side`` pixels, aged with
``data.preset`` at that (photo) scale, and both versions reduced to the network's thumbnail. Per step::

    [A|b] = C(x_thumb);   L = |clamp(A x_thumb + b) - y_thumb|_1     (loss.colour: l1)
                          L = |clamp(A x_thumb + b) - y_thumb|_2^2   (loss.colour: mse)
                          L = mean_i 10 log10(mse_i + floor)          (loss.colour: psnr, per photo i;
                                                                       floor: loss.colour_floor)

An affine map commutes with area averaging, so fitting it on thumbnails fits it on the photo (up to the
clamp). With ``data.gray_target`` a photo the synthesizer turned grayscale has the clean photo's luma as its
target (no colour is invented), and ``data.clean_fraction`` of the photos are left unaged, so that a photo
needing nothing keeps its colours.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..imageio import gray_to_rgb, resize_max_side, rgb_to_luma
from ..models import NETWORKS
from ..models.colour import GlobalColourNet, apply_colour, thumbnail
from ..seeding import check_seed, derive_seed, numpy_rng
from .stages import STAGES, Stage

COLOUR_NETWORK = "global_colour"
PSNR_FLOOR = 3e-3  # mean squared error the colour cannot remove (noise, blur, defects): ~25 dB


def psnr_loss(out: torch.Tensor, target: torch.Tensor, floor: float = PSNR_FLOOR) -> torch.Tensor:
    """``mean_i 10 log10(mse_i + floor)``: minus the mean PSNR over the photos ``i`` of the batch, the
    benchmark's own average. Unlike a pooled L1 or MSE, every photo weighs by its relative error, so
    a photo that needs little correction is not recoloured to help a badly faded one. ``floor`` stands in
    for the error a global colour map cannot remove (on a thumbnail it averages out), so an unaged photo's
    near-zero error does not dominate the batch. ``out``, ``target``: ``(N, 3, h, w)`` -> scalar."""
    mse = (out.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(mse + float(floor)).mean()


COLOUR_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "psnr": psnr_loss}
if COLOUR_NETWORK not in NETWORKS:
    NETWORKS.register(COLOUR_NETWORK)(GlobalColourNet)


def random_window(image: torch.Tensor, area: tuple[float, float], rng) -> torch.Tensor:
    """A window of ``image`` ``(N, C, H, W)`` with ``image``'s aspect ratio and a share of its area drawn
    uniformly from ``area = (lo, hi)``, at a uniform position; ``(1, 1)`` returns ``image`` itself."""
    lo, hi = area
    if lo >= 1.0:
        return image
    h, w = image.shape[-2:]
    scale = float(rng.uniform(lo, hi)) ** 0.5
    ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return image[..., top:top + ch, left:left + cw]


class AgedThumbnails(Dataset):
    """``{"clean", "degraded": (3, size, size), "mask": (1, size, size), "record"}`` per photo: the photo at
    ``side`` pixels (longer side) aged whole, then both versions thumbnailed; ``mask`` is the synthesizer's
    damage mask thumbnailed alike, ``>= 0.5`` (defects that keep at least half of a thumbnail pixel: torn
    pieces and wide cracks, not thin scratches), zeros for an unaged photo.

    The ageing of item ``i`` depends on ``(seed, epoch // reuse, i)`` (a worker keeps it for ``reuse``
    epochs: ageing costs far more than a step of this small network), its random horizontal flip on
    ``(seed, epoch, i)``. With ``crop = (lo, hi)`` below 1, each ageing first cuts a random window holding a
    share of the photo's area drawn from ``[lo, hi]`` (same aspect ratio), so that one photo gives many
    different colour statistics.
    """

    def __init__(self, source: Any, synthesizer: Any, size: int, side: int, seed: int = 0,
                 gray_target: bool = True, clean_fraction: float = 0.0, reuse: int = 1,
                 crop: tuple[float, float] = (1.0, 1.0)):
        from ..degrade import Synthesizer

        if int(reuse) < 1:
            raise ValueError(f"reuse must be >= 1, got {reuse}")
        self.crop = (float(crop[0]), float(crop[1]))
        if not 0.0 < self.crop[0] <= self.crop[1] <= 1.0:
            raise ValueError(f"crop must be (lo, hi) with 0 < lo <= hi <= 1, got {crop}")
        self.source, self.size, self.side, self.reuse = source, int(size), int(side), int(reuse)
        self.synthesizer = Synthesizer(synthesizer) if isinstance(synthesizer, (str, dict)) else synthesizer
        self.seed, self.gray_target, self.clean_fraction = check_seed(seed), bool(gray_target), float(clean_fraction)
        self.epoch = 0
        self._aged: dict[int, tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def _thumbnails(self, index: int) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        age_seed = derive_seed(self.seed, self.epoch // self.reuse, index)
        hit = self._aged.get(index)
        if hit is not None and hit[0] == age_seed:
            return hit
        undamaged = bool(numpy_rng(age_seed, 0).random() < self.clean_fraction)
        photo = random_window(self.source[index].image, self.crop, numpy_rng(age_seed, 2))
        photo = resize_max_side(photo, self.side)
        record: dict[str, Any] = {"ops": [], "undamaged": undamaged}
        aged, mask = photo, torch.zeros_like(photo[:, :1])
        if not undamaged:
            out = self.synthesizer(photo, seed=derive_seed(age_seed, 1))
            aged, mask, record = out.image, out.mask, dict(out.records[0])
        if self.gray_target and any(op.get("type") == "grayscale" for op in record.get("ops", [])):
            photo = gray_to_rgb(rgb_to_luma(photo))
        record["age_seed"] = age_seed
        small_mask = (thumbnail(mask.float(), self.size)[0] >= 0.5).float()
        hit = self._aged[index] = (age_seed, thumbnail(photo, self.size)[0], thumbnail(aged, self.size)[0],
                                   small_mask, record)
        return hit

    def __getitem__(self, index: int) -> dict[str, Any]:
        _, clean, degraded, mask, record = self._thumbnails(index)
        flip = bool(numpy_rng(derive_seed(self.seed, self.epoch, index), 0).random() < 0.5)
        if flip:
            clean, degraded, mask = clean.flip(-1), degraded.flip(-1), mask.flip(-1)
        record = {**record, "index": index, "epoch": self.epoch, "flip": flip}
        return {"clean": clean, "degraded": degraded, "mask": mask, "record": record}


@STAGES.register("colour")
class ColourStage(Stage):
    """Trains :class:`GlobalColourNet` on whole training photos aged at photo scale."""

    name = "colour"
    main_stream = "photos"

    def build(self) -> None:
        cfg = self.cfg
        data, spec = cfg["data"], dict(cfg["model"]["colour"])
        self.net = self.add_model("colour", {"type": COLOUR_NETWORK, **spec})
        if self.ctx.real:
            self.ctx.note("note: --real is not used by colour (real old photos have no clean reference)")
        ds = AgedThumbnails(self.open_source(self.ctx.data), data["preset"], int(spec.get("size", 64)),
                            int(data["colour_side"]), self.dataset_seed(8), bool(data.get("gray_target", True)),
                            float(data.get("clean_fraction", 0.0)), int(data.get("photo_reuse", 1)),
                            tuple(data.get("colour_crop", (1.0, 1.0))))
        self.add_stream("photos", ds, int(data["batch_size"]))
        name = str(cfg["loss"].get("colour", "l1"))
        if name not in COLOUR_LOSSES:
            raise KeyError(f"unknown loss.colour {name!r}; valid: {', '.join(COLOUR_LOSSES)}")
        self.colour_loss = (partial(psnr_loss, floor=float(cfg["loss"].get("colour_floor", PSNR_FLOOR)))
                            if name == "psnr" else COLOUR_LOSSES[name])

    def train_step(self, step: int) -> dict[str, float]:
        batch = self.next_batch("photos")
        x, y = batch["degraded"].contiguous(), batch["clean"].contiguous()
        with self.precision.autocast():
            affine = self.net(x)
            out = apply_colour(x.float(), affine.float())
            loss = self.colour_loss(out, y.float())
        self.precision.step(loss, self.optimizers["colour"])
        with torch.no_grad():
            before, after = F.l1_loss(x.float(), y.float()), F.l1_loss(out.detach(), y.float())
        return {"loss": loss.detach().item(), "l1": after.item(), "input_l1": before.item()}
