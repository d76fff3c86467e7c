"""Where the inpainting baselines (``nlm+inpaint``, ..., ``dip``) get their damage mask from.

Decision (stated in every run's manifest and summary): the mask is **detected by our scratch detector**
(``RUNS/scratch/last.pt``) whenever that checkpoint exists, exactly as our pipeline's stage 1 detects it
(:class:`~oldphoto_bench.restore.damage.DamageDetector`: the scratch detector's mask united with the
torn-piece detector's when ``RUNS/torn`` exists), so the baselines see the same mask our method would. Without the
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
        if path.is_file():
            from ...restore.damage import DamageDetector
            from ...restore.restorer import DEFAULT_TILE

            self.detector = DamageDetector(ctx.checkpoints, ctx.device, tile=DEFAULT_TILE)
            self.source = DETECTED
            torn = "" if self.detector.torn is None else (
                f", united with the torn-piece detector {checkpoint_path(ctx.checkpoints, 'torn')} (whole photo, "
                f"probability >= {self.detector.torn_threshold:g}, components of mean probability >= "
                f"{self.detector.torn_component_prob:g})")
            self.description = (f"detected by our scratch detector {path} (luma, tiled, sigmoid >= its calibrated "
                                f"threshold, small components dropped and dilated as in the restore pipeline){torn}")
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
        return self.detector(item.image.float()).mask
