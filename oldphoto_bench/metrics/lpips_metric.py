"""LPIPS (Zhang et al. 2018) through the ``lpips`` package: AlexNet trunk, v0.1 linear layers.

The ``lpips`` package would download torchvision's AlexNet ImageNet weights itself. We never let it: the
network is built with a random trunk (``pnet_rand=True``) and the verified ``alexnet-owt-7be5be79.pth`` from
the weights catalogue is loaded into it, together with the v0.1 linear layers (``alex.pth``). When either
file is missing the constructor raises :class:`MetricUnavailable`; there is no silent fallback to random
weights. :meth:`LPIPS.for_tests` builds a seeded random network for tests and timing only, and says so in
its settings.

Input scaling: the library's ``[0, 1]`` images are mapped to ``[-1, 1]`` (``2x - 1``) inside the wrapper,
the range LPIPS was trained on; the v0.1 scaling layer then normalises with ImageNet statistics.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Mapping
from typing import ClassVar

import torch

from ..seeding import torch_generator
from .base import METRICS, MetricUnavailable, PerImageMetric
from .weights import WeightsError, WeightsFile, require


@contextlib.contextmanager
def _quiet_construction():
    """Module construction draws default initialisations from torch's global generator; fork it so the
    caller's random state is untouched, and hide torchvision's ``pretrained=`` deprecation warnings."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _build_network(lin_path: str | None) -> torch.nn.Module:
    import lpips

    with _quiet_construction():
        net = lpips.LPIPS(net="alex", version="0.1", lpips=True, pretrained=lin_path is not None,
                          pnet_rand=True, model_path=lin_path, verbose=False, eval_mode=True)
    return net


def load_alexnet_trunk(net: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy torchvision AlexNet ``features.<i>.*`` tensors into lpips' trunk slices (``net.slice<k>.<i>.*``)."""
    trunk = net.net
    own = trunk.state_dict()
    mapped = {}
    for key in own:
        _, rest = key.split(".", 1)  # "slice2.3.weight" -> "3.weight"
        src = f"features.{rest}"
        if src not in state:
            raise WeightsError(f"AlexNet state dict lacks {src!r} (is this torchvision's alexnet-owt file?)")
        mapped[key] = state[src]
    trunk.load_state_dict(mapped, strict=True)


def _randomise_(module: torch.nn.Module, seed: int) -> None:
    """He-normal weights and zero biases from a seeded CPU generator (tests and timing only)."""
    g = torch_generator(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()


@METRICS.register()
class LPIPS(PerImageMetric):
    name: ClassVar[str] = "lpips"
    higher_is_better: ClassVar[bool] = False
    requires_weights: ClassVar[tuple[str, ...]] = ("alexnet", "lpips-alex-v0.1")
    notes: ClassVar[str] = ("Learned perceptual distance (Zhang et al. 2018), lpips package, AlexNet trunk, v0.1 "
                            "linear layers, spatial mean. Inputs in [0, 1] are scaled to [-1, 1] by the wrapper.")

    def __init__(self, device: str | torch.device = "cpu", weights_dir: str | os.PathLike | None = None,
                 catalogue: Mapping[str, WeightsFile] | None = None):
        try:
            trunk_path = require("alexnet", weights_dir, catalogue)
            lin_path = require("lpips-alex-v0.1", weights_dir, catalogue)
        except WeightsError as e:
            raise MetricUnavailable(self.name, str(e)) from None
        net = _build_network(str(lin_path))
        load_alexnet_trunk(net, torch.load(trunk_path, map_location="cpu", weights_only=True))
        self._setup(net, device, {"trunk": str(trunk_path), "linear_layers": str(lin_path)})

    @classmethod
    def for_tests(cls, seed: int = 0, device: str | torch.device = "cpu") -> LPIPS:
        """A seeded **random** network with the real architecture: for tests and timing, never for scores."""
        self = cls.__new__(cls)
        net = _build_network(None)
        _randomise_(net, seed)
        with torch.no_grad():  # like the trained ones, the linear layers weigh squared differences >= 0
            for lin in net.lins:
                lin.model[-1].weight.abs_()
        self._setup(net, device, {"trunk": f"RANDOM (test only, seed {seed})",
                                  "linear_layers": f"RANDOM (test only, seed {seed})"})
        return self

    def _setup(self, net: torch.nn.Module, device, weights: dict[str, str]) -> None:
        self.device = torch.device(device)
        self.network = net.to(self.device).eval().requires_grad_(False)
        self.settings = {"net": "alex", "version": "0.1", "package": _lpips_version(),
                         "input_scaling": "[0,1] -> [-1,1] inside the wrapper (2x - 1)",
                         "spatial_reduction": "mean", "weights": weights}

    def _compute(self, pred, target):
        p = pred.to(self.device, torch.float32) * 2.0 - 1.0
        t = target.to(self.device, torch.float32) * 2.0 - 1.0
        return self.network(p, t, normalize=False).flatten()


def _lpips_version() -> str:
    from importlib import metadata

    try:
        return f"lpips {metadata.version('lpips')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - lpips is a dependency
        return "lpips (unknown version)"
