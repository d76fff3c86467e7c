"""The FID Inception-v3 feature extractor: 2048-d pool3 features of the 2015-12-05 TensorFlow graph.

FID and KID are only comparable across papers when computed with this network (Heusel et al. 2017's TF
graph, ported to PyTorch by pytorch-fid and torch-fidelity: ``pt_inception-2015-12-05-6726825d.pth``), not
torchvision's ImageNet Inception. The port differs from torchvision's architecture in two ways that we
reproduce by overriding the blocks' forward passes (parameter names stay torchvision's, so the state dict
loads strictly):

* the average pools inside the Mixed blocks ignore padded positions (TF "SAME" pooling:
  ``count_include_pad=False``);
* the last block (Mixed_7c) pools its fourth branch with a 3x3 *max* pool.

Preprocessing, two conventions (``preprocess=``):

* ``"torch-fidelity"`` (default; torch-fidelity, torchmetrics' default, the original TF code): quantise to
  8 bit (``round(255 x)``), resize to 299x299 with TensorFlow 1 ``resize_bilinear`` semantics
  (``align_corners=False``, *no* half-pixel centres: ``src = dst * in / out``), scale ``(x - 128) / 128``;
* ``"pytorch-fid"``: ``F.interpolate(bilinear, align_corners=False)`` to 299x299, scale ``2 x - 1``.

The two give slightly different FIDs; reports state which one was used.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tvi

from ..seeding import torch_generator
from .weights import WeightsFile, require

INPUT_SIZE = 299
FEATURE_DIM = 2048
PREPROCESS = ("torch-fidelity", "pytorch-fid")


def _chain(block: nn.Module, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    for n in names:
        x = getattr(block, n)(x)
    return x


def _avg_pool_same(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tvi.InceptionA):
    def _forward(self, x):
        return [self.branch1x1(x), _chain(self, ("branch5x5_1", "branch5x5_2"), x),
                _chain(self, ("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), x),
                self.branch_pool(_avg_pool_same(x))]


class FIDInceptionC(tvi.InceptionC):
    def _forward(self, x):
        return [self.branch1x1(x), _chain(self, ("branch7x7_1", "branch7x7_2", "branch7x7_3"), x),
                _chain(self, tuple(f"branch7x7dbl_{i}" for i in range(1, 6)), x),
                self.branch_pool(_avg_pool_same(x))]


class FIDInceptionE(tvi.InceptionE):
    """``pool="avg"`` for Mixed_7b, ``pool="max"`` for Mixed_7c."""

    def __init__(self, in_channels: int, pool: str = "avg", **kw):
        super().__init__(in_channels, **kw)
        self.pool = pool

    def _forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = _chain(self, ("branch3x3dbl_1", "branch3x3dbl_2"), x)
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.pool == "max" else _avg_pool_same(x)
        return [self.branch1x1(x), b3, bd, self.branch_pool(pooled)]


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with TensorFlow 1 ``resize_bilinear(align_corners=False)`` semantics, per axis:

        src = dst * n_in / n_out,  i0 = floor(src),  i1 = min(i0 + 1, n_in - 1),
        out[dst] = (1 - (src - i0)) in[i0] + (src - i0) in[i1]

    (no half-pixel offset, no antialiasing). ``(N, C, H, W)`` -> ``(N, C, size[0], size[1])``.
    """

    def axis(n_in: int, n_out: int, dim: int, t: torch.Tensor) -> torch.Tensor:
        if n_in == n_out:
            return t
        src = torch.arange(n_out, dtype=torch.float64, device=t.device) * (n_in / n_out)
        i0 = src.floor().long().clamp_max(n_in - 1)
        i1 = (i0 + 1).clamp_max(n_in - 1)
        shape = [1] * t.dim()
        shape[dim] = n_out
        f = (src - i0).to(t.dtype).view(shape)
        a, b = t.index_select(dim, i0), t.index_select(dim, i1)
        return a + (b - a) * f

    x = axis(x.shape[-1], size[1], x.dim() - 1, x)
    return axis(x.shape[-2], size[0], x.dim() - 2, x)


class FIDInceptionV3(nn.Module):
    """``(N, 3, H, W)`` RGB in ``[0, 1]`` -> ``(N, 2048)`` pool3 features (see the module docstring)."""

    def __init__(self, preprocess: str = "torch-fidelity"):
        super().__init__()
        if preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
        self.preprocess = preprocess
        blocks = [tvi.BasicConv2d, FIDInceptionA, tvi.InceptionB, FIDInceptionC, tvi.InceptionD, FIDInceptionE,
                  tvi.InceptionAux]
        # default initialisation draws from the global generator: fork it so callers' state is untouched
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = tvi.Inception3(num_classes=1008, aux_logits=False, transform_input=False,
                                 inception_blocks=blocks, init_weights=False)
            net.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.net = net.eval()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.preprocess == "torch-fidelity":
            x = torch.round(x.clamp(0.0, 1.0) * 255.0)
            x = resize_bilinear_tf1(x, (INPUT_SIZE, INPUT_SIZE))
            return (x - 128.0) / 128.0
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = self.prepare(x)
        x = n.maxpool1(_chain(n, ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"), x))
        x = n.maxpool2(_chain(n, ("Conv2d_3b_1x1", "Conv2d_4a_3x3"), x))
        x = _chain(n, ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                       "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"), x)
        return torch.flatten(n.avgpool(x), 1)

    def train(self, mode: bool = True) -> FIDInceptionV3:  # batch norm must keep its running statistics
        return super().train(False)


def load_fid_inception(weights_dir: str | os.PathLike | None = None, preprocess: str = "torch-fidelity",
                       catalogue: Mapping[str, WeightsFile] | None = None) -> tuple[FIDInceptionV3, str]:
    """The extractor with the verified ``inception-fid`` weights loaded strictly, and the file's path.
    Raises :class:`~oldphoto_bench.metrics.weights.WeightsError` when the file is missing or corrupted."""
    path = require("inception-fid", weights_dir, catalogue)
    model = FIDInceptionV3(preprocess)
    state = torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.net.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False), str(path)


def random_fid_inception(seed: int = 0, preprocess: str = "torch-fidelity") -> FIDInceptionV3:
    """The FID architecture with seeded **random** He-normal weights: for tests and timing only."""
    model = FIDInceptionV3(preprocess)
    g = torch_generator(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
    return model.eval().requires_grad_(False)
