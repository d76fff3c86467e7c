"""Stage 1 of the restore pipeline: where a photo is damaged (scratches, cracks, dust, torn-off pieces).

Two detectors, both loaded from a runs folder, and one mask::

    p_s  = U_s(luma(x))                      scratch detector, full resolution, blended tiles (:mod:`.tiling`)
    m_s  = dilate(drop_small(p_s >= t_s))    t_s calibrated when it was trained; components under
                                             ``min_component`` pixels dropped; dilated by ``dilation`` px
    p_t  = up(U_t(thumbnail(x)))             torn-piece detector on the whole photo (:mod:`.torn`), when
                                             ``RUNS/torn`` exists
    m_t  = components of (p_t >= t_t) whose mean p_t >= c_t      (weak, uncertain blobs dropped)
    mask = max(m_s, m_t)                     (1, 1, H, W) in {0, 1}

The restore pipeline (:class:`~.restorer.Restorer`) and the inpainting baselines of the benchmark
(:mod:`oldphoto_bench.bench.methods.masks`) both use :class:`DamageDetector`, so they see the same mask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..models import DETECTION_THRESHOLD, to_detector_input
from .inpaint import MIN_COMPONENT, dilate_mask, drop_small_components
from .tiling import run_tiled
from .torn import torn_probability

DETECTOR_OVERLAP = 128  # >= 128 with margin 32 for the depth-4 detector (receptive field ~169 px)
# pixels the detected mask grows by: none, as the released test pipeline. With the calibrated detector a 3x3
# dilation tripled the flagged share of clean Kodak24 photos (0.56% -> 1.50%, benchmarks/eval_scratch_detector.py)
MASK_DILATION = 0
# c_t: a torn-piece component is kept only when its mean probability reaches this. Chosen on photos aged with
# new seeds (CBSD68 + Set14, 82 photos, paper preset with torn pieces on half; per component, >= 50% inside
# the damage mask = a real piece): at 0 / 0.9 / 0.92 the kept area of real pieces is 0.49 / 0.46 / 0.45 and
# of false ones 0.19 / 0.11 / 0.055 (photo fractions summed); filling a false piece erases what it covers.
TORN_COMPONENT_PROB = 0.92


@dataclass
class DamageResult:
    """``mask`` ``(1, 1, H, W)`` in {0, 1}; ``stages``: ``"scratch_probability"`` (and ``"torn_probability"``)
    ``(1, 1, H, W)`` in [0, 1]; ``seconds``: ``"scratch"`` (and ``"torn"``)."""

    mask: torch.Tensor
    stages: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class DamageDetector:
    """The scratch detector of ``RUNS/scratch`` and, when present and ``torn``, the torn-piece detector of
    ``RUNS/torn``; see the module docstring.

    Args:
        runs: runs folder holding ``scratch/last.pt`` (and ``torn/last.pt``).
        device: where the networks run; inputs and outputs stay on the CPU.
        tile: the scratch detector's tile side in pixels (None: the whole image at once).
        threshold: scratch probability threshold (None: the checkpoint's calibrated one, else 0.4 as released).
        dilation, min_component: see the module docstring.
        torn: use ``RUNS/torn`` when it exists.
        torn_threshold: torn-piece probability threshold (None: the checkpoint's).
        torn_component_prob: smallest mean probability of a kept torn-piece component (0: keep all).
    """

    def __init__(self, runs: str | Path, device: str = "cpu", tile: int | None = None,
                 threshold: float | None = None, dilation: int = MASK_DILATION,
                 min_component: int = MIN_COMPONENT, torn: bool = True, torn_threshold: float | None = None,
                 torn_component_prob: float = TORN_COMPONENT_PROB):
        from ..train.artifacts import checkpoint_path, load_scratch, load_torn

        if min(int(dilation), int(min_component)) < 0:
            raise ValueError(f"dilation and min_component must be >= 0, got {dilation} and {min_component}")
        self.device, self.tile = str(device), tile
        self.dilation, self.min_component = int(dilation), int(min_component)
        self.torn_component_prob = float(torn_component_prob)
        self.detector = load_scratch(runs, self.device)
        self.threshold = float(threshold) if threshold is not None else (
            self.detector.calibrated_threshold or DETECTION_THRESHOLD)
        self.torn = load_torn(runs, self.device) if torn and checkpoint_path(runs, "torn").is_file() else None
        self.torn_threshold = None
        if self.torn is not None:
            self.torn_threshold = self.torn.calibrated_threshold if torn_threshold is None else float(torn_threshold)

    @torch.no_grad()
    def scratch_probability(self, image: torch.Tensor) -> torch.Tensor:
        """Scratch probability ``(1, 1, H, W)`` in [0, 1] (CPU) for ``image`` ``(1, 3, H, W)``."""
        x = to_detector_input(image.float().cpu(), self.detector.in_channels)  # luma or RGB
        tile, m = self.tile, self.detector.multiple
        overlap = max(m, min(DETECTOR_OVERLAP, (tile // 2) // m * m)) if tile else DETECTOR_OVERLAP
        return run_tiled(self.detector.predict_proba, x, tile=tile, overlap=overlap, multiple=m,
                         margin=overlap // 4, device=self.device)

    def torn_probability(self, image: torch.Tensor) -> torch.Tensor:
        """Torn-piece probability ``(1, 1, H, W)`` in [0, 1] (CPU) of ``image`` ``(1, 3, H, W)``."""
        if self.torn is None:
            raise ValueError("no torn-piece detector: the runs folder has no torn/last.pt (or torn=False)")
        return torn_probability(self.torn, image, self.torn.thumbnail_size, self.device)

    def mask_from_probability(self, prob: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """The scratch mask: ``prob >= threshold`` (None: :attr:`threshold`), without components smaller than
        :attr:`min_component` pixels, dilated by :attr:`dilation` pixels -> ``(1, 1, H, W)`` float in {0, 1}."""
        t = self.threshold if threshold is None else float(threshold)
        mask = drop_small_components((prob >= t).float(), self.min_component)
        return dilate_mask(mask, self.dilation)

    def torn_mask(self, prob: torch.Tensor) -> torch.Tensor:
        """The torn-piece mask of a torn-piece probability ``(1, 1, H, W)``: ``prob >= torn_threshold``, keeping
        only connected components (8-connected) whose mean probability is at least :attr:`torn_component_prob`."""
        mask = (prob >= self.torn_threshold).float()
        if self.torn_component_prob <= 0 or not mask.any():
            return mask
        n, labels = cv2.connectedComponents(mask[0, 0].numpy().astype(np.uint8), connectivity=8)
        ids = torch.from_numpy(labels).long().flatten()
        sums = torch.zeros(n).index_add_(0, ids, prob[0, 0].flatten().float())
        counts = torch.bincount(ids, minlength=n).clamp(min=1).float()
        keep = (sums / counts) >= self.torn_component_prob
        keep[0] = False  # label 0: the background
        return keep[ids].view_as(mask).float()

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> DamageResult:
        """Both detectors on ``image`` ``(1, 3, H, W)`` in [0, 1] -> :class:`DamageResult`."""
        t0 = time.perf_counter()
        prob = self.scratch_probability(image)
        out = DamageResult(self.mask_from_probability(prob), {"scratch_probability": prob})
        out.seconds["scratch"] = time.perf_counter() - t0
        if self.torn is not None:
            t0 = time.perf_counter()
            torn = self.torn_probability(image)
            out.mask = torch.maximum(out.mask, self.torn_mask(torn))
            out.stages["torn_probability"] = torn
            out.seconds["torn"] = time.perf_counter() - t0
        return out
