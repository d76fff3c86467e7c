"""Where the inpainting baselines (``nlm+inpaint``, ..., ``dip``) get their damage mask from.

Decision (stated in every run's manifest and summary): the mask is **detected by our scratch detector**
(``RUNS/scratch/last.pt``) whenever that checkpoint exists, exactly as our pipeline's stage 1 detects it
(luma, full resolution in blended tiles, ``sigmoid >= 0.4``, dilated by 1 pixel; the constants of
:mod:`oldphoto_bench.restore.restorer`), so the baselines see the same mask our method would. Without the
checkpoint, on a synthetic suite, the suite's **ground-truth** mask is used instead: an oracle that favours
the baseline, said so in the method's settings (``mask_source``). On a real suite without a detector there
is no mask and the methods are unavailable.
"""

from __future__ import annotations

import torch

from .base import MethodContext, MethodInput, MethodUnavailable

DETECTED = "detected"
GROUND_TRUTH = "ground truth (oracle)"


class DamageMasks:
    """``masks(item) -> (1, 1, H, W)`` float in {0, 1}. ``source`` is :data:`DETECTED` or :data:`GROUND_TRUTH`;
    ``description`` says how, for the manifest."""

    def __init__(self, ctx: MethodContext, method: str):
        from ...train.artifacts import checkpoint_path

        path = checkpoint_path(ctx.checkpoints, "scratch")
        self.detector = None
        self.device = ctx.device
        if path.is_file():
            from ...models import DETECTION_THRESHOLD
            from ...train.artifacts import load_scratch

            self.detector = load_scratch(ctx.checkpoints, ctx.device)
            self.threshold = self.detector.calibrated_threshold or DETECTION_THRESHOLD
            self.source = DETECTED
            self.description = (f"detected by our scratch detector {path} (luma, tiled, sigmoid >= its calibrated threshold, "
                                "dilated as in the restore pipeline)")
        elif ctx.has_masks:
            self.source = GROUND_TRUTH
            self.description = (f"the suite's ground-truth damage mask (oracle): no scratch detector at {path}; "
                                "train one with `oldphoto-bench train scratch` to compare on equal terms")
        else:
            raise MethodUnavailable(method, f"needs a damage mask: no scratch detector at {path} and the suite "
                                            "has no ground-truth masks")

    @torch.no_grad()
    def __call__(self, item: MethodInput) -> torch.Tensor:
        if self.detector is None:
            if item.mask is None:
                raise ValueError(f"{item.name}: the suite gave no ground-truth mask")
            return (item.mask > 0.5).float()
        from ...models import to_detector_input
        from ...restore.inpaint import dilate_mask
        from ...restore.restorer import DEFAULT_TILE, DETECTOR_OVERLAP, MASK_DILATION
        from ...restore.tiling import run_tiled

        m = self.detector.multiple
        overlap = max(m, min(DETECTOR_OVERLAP, (DEFAULT_TILE // 2) // m * m))
        x = to_detector_input(item.image.float(), self.detector.in_channels)
        prob = run_tiled(self.detector.predict_proba, x, tile=DEFAULT_TILE,
                         overlap=overlap, multiple=m, margin=overlap // 4, device=self.device)
        return dilate_mask((prob >= self.threshold).float(), MASK_DILATION)
