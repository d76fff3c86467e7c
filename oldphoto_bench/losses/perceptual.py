"""VGG19 perceptual loss, used only when torchvision's VGG19 weights are already on disk (never downloads).

pix2pixHD's ``VGGLoss`` (used by the released old-photo code): L1 between VGG19 activations at relu1_1,
relu2_1, relu3_1, relu4_1 and relu5_1 of output and target, weighted 1/32, 1/16, 1/8, 1/4, 1. Inputs are
images in [0, 1], normalised here with the ImageNet mean and std that torchvision's weights expect.

Where weights are looked for: an explicit ``path`` (a ``.pth`` file, or a folder holding
``vgg19-dcbb9e9d.pth``) and nothing else; or, without one, torch's hub cache
``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`` (where ``torchvision`` itself would have saved them).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1 file name
# (end index in vgg19.features, weight): slices ending right after relu1_1 ... relu5_1, as pix2pixHD
VGG_LAYERS: tuple[tuple[int, float], ...] = ((2, 1 / 32), (7, 1 / 16), (12, 1 / 8), (21, 1 / 4), (30, 1.0))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_weight_candidates(path: str | Path | None = None) -> list[Path]:
    """The files :func:`find_vgg_weights` checks, in order."""
    if path is not None:
        p = Path(path).expanduser()
        return [p / VGG19_FILENAME if p.is_dir() else p]
    return [Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME]


def find_vgg_weights(path: str | Path | None = None) -> Path | None:
    """The first existing VGG19 weight file among :func:`vgg_weight_candidates`, else None. No download."""
    for cand in vgg_weight_candidates(path):
        if cand.is_file():
            return cand
    return None


class VGGPerceptual(nn.Module):
    """``sum_k w_k * mean |phi_k(norm(x)) - phi_k(norm(y))|`` with frozen VGG19 features ``phi_k``.

    ``forward(x, y)``: ``(N, 3, H, W)`` each in [0, 1]; ``y``'s features are detached. Raises
    ``FileNotFoundError`` (naming every place looked at) when no weights are found.
    """

    def __init__(self, weights_path: str | Path | None = None):
        super().__init__()
        found = find_vgg_weights(weights_path)
        if found is None:
            looked = ", ".join(str(p) for p in vgg_weight_candidates(weights_path))
            raise FileNotFoundError(
                f"VGG19 weights not found (looked in: {looked}). The perceptual loss never downloads; "
                f"put torchvision's {VGG19_FILENAME} there or pass weights_path"
            )
        self.weights_path = found
        from torchvision.models import vgg19

        # Built on the meta device and filled by assignment: no random init, no global RNG, no download.
        with torch.device("meta"):
            net = vgg19(weights=None)
        from ..train.checkpoint import load_tensors

        state = load_tensors(found, "cpu", what="VGG19 weights file")
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        net.features.load_state_dict(features, assign=True)
        ends = [end for end, _ in VGG_LAYERS]
        self.slices = nn.ModuleList(net.features[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True))
        self.layer_weights = [w for _, w in VGG_LAYERS]
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> VGGPerceptual:
        return super().train(False)  # frozen feature extractor: always in eval mode

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        out = []
        for s in self.slices:
            h = s(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.features(x)
        with torch.no_grad():
            fy = self.features(y)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.layer_weights, fx, fy, strict=True))


def maybe_vgg_perceptual(weights_path: str | Path | None = None, device: str | torch.device = "cpu"
                         ) -> tuple[VGGPerceptual | None, str]:
    """For trainers: ``(loss module or None, one line for the run log saying whether it is used and why)``."""
    try:
        loss = VGGPerceptual(weights_path).to(device)
    except FileNotFoundError as e:
        return None, f"VGG perceptual loss: not used ({e})"
    return loss, f"VGG perceptual loss: used (weights {loss.weights_path})"
