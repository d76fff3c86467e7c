"""Weight-free full-reference perceptual metrics from piq, wrapped with the metric contract.

None of these needs downloaded weights. Each wrapper records the piq function, piq's version and every
parameter (piq's defaults, which follow the papers, unless overridden) in its settings. Inputs are clamped
to ``[0, data_range]`` first, because piq rejects values outside it and restored outputs can overshoot.

    haarpsi   Reisenhofer et al. 2018, Haar wavelet-based perceptual similarity   higher is better
    gmsd      Xue et al. 2014, gradient magnitude similarity deviation              lower is better
    ms_gmsd   Zhang et al. 2017, multi-scale GMSD                                   lower is better
    mdsi      Nafchi et al. 2016, mean deviation similarity index                   lower is better
    vsi       Zhang et al. 2014, visual saliency-induced index                      higher is better
    fsim      Zhang et al. 2011, feature similarity (FSIMc, chromatic)              higher is better
    vif       Sheikh & Bovik 2006, visual information fidelity, pixel domain        higher is better
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from .base import METRICS, PerImageMetric


def _piq_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("piq")
    except metadata.PackageNotFoundError:  # pragma: no cover - piq is a dependency
        return "unknown"


class PiqMetric(PerImageMetric):
    """A piq full-reference function ``f(x, y, reduction="none", data_range=..., **params) -> (N,)``."""

    piq_function: ClassVar[str] = ""
    citation: ClassVar[str] = ""

    def __init__(self, data_range: float = 1.0, **params: Any):
        fn = self._function()
        sig = inspect.signature(fn)
        defaults = {k: p.default for k, p in sig.parameters.items()
                    if k not in ("x", "y", "reduction", "data_range") and p.default is not inspect.Parameter.empty}
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(f"{self.name}: unknown parameters {unknown}; valid: {sorted(defaults)}")
        defaults.update(params)
        self._params = params
        self.settings = {"implementation": f"piq {_piq_version()} {self.piq_function}", "reference": self.citation,
                         "data_range": float(data_range), "input": "clamped to [0, data_range]",
                         "parameters": {k: _jsonable(v) for k, v in defaults.items()}}

    def _function(self) -> Callable[..., torch.Tensor]:
        import piq

        return getattr(piq, self.piq_function)

    def _compute(self, pred, target):
        r = self.settings["data_range"]
        x = pred.float().clamp(0.0, r)
        y = target.float().clamp(0.0, r)
        return self._function()(x, y, reduction="none", data_range=r, **self._params)


def _jsonable(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.tolist()
    return v if isinstance(v, (bool, int, float, str, type(None), list, dict)) else repr(v)


def _piq(name: str, function: str, higher: bool, citation: str, notes: str) -> type[PiqMetric]:
    cls = type(name.upper(), (PiqMetric,), {
        "name": name, "piq_function": function, "higher_is_better": higher, "citation": citation,
        "notes": notes, "__doc__": f"{citation} (piq.{function}); {'higher' if higher else 'lower'} is better.",
        "__module__": __name__,
    })
    return METRICS.register()(cls)


HAARPSI = _piq("haarpsi", "haarpsi", True, "Reisenhofer et al. 2018",
               "Haar wavelet-based perceptual similarity index (piq), in [0, 1].")
GMSD = _piq("gmsd", "gmsd", False, "Xue et al. 2014",
            "Gradient magnitude similarity deviation (piq), 0 for identical images.")
MS_GMSD = _piq("ms_gmsd", "multi_scale_gmsd", False, "Zhang et al. 2017",
               "Multi-scale gradient magnitude similarity deviation (piq), 0 for identical images.")
MDSI = _piq("mdsi", "mdsi", False, "Nafchi et al. 2016",
            "Mean deviation similarity index (piq), 0 for identical images.")
VSI = _piq("vsi", "vsi", True, "Zhang et al. 2014",
           "Visual saliency-induced index (piq), 1 for identical images.")
FSIM = _piq("fsim", "fsim", True, "Zhang et al. 2011",
            "Feature similarity index, chromatic FSIMc (piq), 1 for identical images.")
VIF = _piq("vif", "vif_p", True, "Sheikh & Bovik 2006",
           "Visual information fidelity, pixel domain (piq vif_p); 1 for identical images, can exceed 1 "
           "for contrast-enhanced images.")
