"""The contract every image-quality metric declares, the ``METRICS`` registry and missing-weights handling.

A metric is a class with these class attributes (its *contract*)::

    name              lower case; the column name in per_image.csv / summary.csv ("psnr", "lpips", "fid")
    higher_is_better  True for similarities (PSNR, SSIM), False for distances (LPIPS, FID)
    kind              "per_image": one value per (prediction, reference) pair
                      "per_set":   one value for a whole set of predictions against a set of references
    reference         "full": needs the clean reference; "none": no-reference (scored on the prediction alone)
    requires_weights  keys into :data:`oldphoto_bench.metrics.weights.CATALOGUE`
    notes             one paragraph a report can print under the table

and an instance attribute ``settings`` (a JSON-serialisable dict: every choice that changes the number).

Inputs follow the library convention: ``(N, 3, H, W)`` float tensors, RGB, values in ``[0, 1]``.
Per-image metrics return a ``(N,)`` float64 CPU tensor; per-set metrics return a :class:`SetScore`.

A metric whose weights are missing cannot be built: its constructor raises :class:`MetricUnavailable`
(``.reason`` says which file is missing and how to fetch it). :func:`try_build` turns that into
``(None, reason)`` so a harness can show an empty value and the reason. No metric ever falls back to
random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..registry import Registry

METRICS = Registry("metric")

KINDS = ("per_image", "per_set")
REFERENCES = ("full", "none")


class MetricUnavailable(Exception):
    """A metric cannot be built here (usually: its weights are missing). ``reason`` is one line for a report."""

    def __init__(self, metric: str, reason: str):
        self.metric = metric
        self.reason = reason
        super().__init__(f"{metric}: {reason}")

    def __reduce__(self):
        return type(self), (self.metric, self.reason)


def check_images(x: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Validate a ``(N, 3, H, W)`` floating-point batch (the library convention) and return it."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected an (N, 3, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"{what}: expected a float tensor with values in [0, 1], got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: empty batch")
    return x


def check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    check_images(pred, "pred")
    check_images(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")


class Metric:
    """Base class; subclasses set the contract attributes and ``self.settings``."""

    name: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    kind: ClassVar[str] = "per_image"
    reference: ClassVar[str] = "full"
    requires_weights: ClassVar[tuple[str, ...]] = ()
    notes: ClassVar[str] = ""

    settings: dict[str, Any]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.kind not in KINDS:
            raise TypeError(f"{cls.__name__}.kind must be one of {KINDS}, got {cls.kind!r}")
        if cls.reference not in REFERENCES:
            raise TypeError(f"{cls.__name__}.reference must be one of {REFERENCES}, got {cls.reference!r}")
        if cls.name != cls.name.lower():
            raise TypeError(f"{cls.__name__}.name must be lower case (it is a CSV column), got {cls.name!r}")

    def contract(self) -> dict[str, Any]:
        """Everything a report or manifest needs to state about this metric."""
        return {
            "name": self.name,
            "higher_is_better": self.higher_is_better,
            "kind": self.kind,
            "reference": self.reference,
            "settings": dict(self.settings),
            "requires_weights": list(self.requires_weights),
            "notes": self.notes,
        }

    @property
    def arrow(self) -> str:
        """"↑" when higher is better, "↓" otherwise (for table headers)."""
        return "\u2191" if self.higher_is_better else "\u2193"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"


class PerImageMetric(Metric):
    """One value per image. Subclasses implement ``_compute(pred, target) -> (N,)`` tensor."""

    kind: ClassVar[str] = "per_image"

    def __call__(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """``pred``, ``target``: ``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N,)`` float64 on CPU."""
        if self.reference == "full":
            if target is None:
                raise ValueError(f"{self.name} is a full-reference metric: pass the reference images")
            check_pair(pred, target)
        else:
            check_images(pred, "pred")
        with torch.no_grad():
            out = self._compute(pred, target)
        return out.detach().to("cpu", torch.float64).reshape(pred.shape[0])

    def _compute(self, pred: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class SetScore:
    """The value of a per-set metric. ``std``: spread over subsets where the metric has one (KID), else None."""

    value: float
    std: float | None
    n_pred: int
    n_target: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "std": self.std, "n_pred": self.n_pred, "n_target": self.n_target}


class SetMetric(Metric):
    """One value for a set. Stream batches with :meth:`update`, then :meth:`compute`; or call it on two sets.

    Subclasses implement ``features(images) -> (n, d) float64 array`` and
    ``score_features(pred_feats, target_feats) -> SetScore``. The reference features can be computed once
    with :meth:`features` and passed to :meth:`update_features` for every method.
    """

    kind: ClassVar[str] = "per_set"

    def __init__(self) -> None:
        self._pred: list[np.ndarray] = []
        self._target: list[np.ndarray] = []

    def features(self, images: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def score_features(self, pred_feats: np.ndarray, target_feats: np.ndarray) -> SetScore:
        raise NotImplementedError

    def reset(self) -> None:
        self._pred, self._target = [], []

    def update(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> None:
        """Add a batch of predictions and (optionally, may differ in number) references."""
        self._pred.append(self.features(check_images(pred, "pred")))
        if target is not None:
            self._target.append(self.features(check_images(target, "target")))

    def update_features(self, pred_feats: np.ndarray | None = None, target_feats: np.ndarray | None = None) -> None:
        if pred_feats is not None:
            self._pred.append(np.asarray(pred_feats, dtype=np.float64))
        if target_feats is not None:
            self._target.append(np.asarray(target_feats, dtype=np.float64))

    def compute(self) -> SetScore:
        if not self._pred or not self._target:
            raise ValueError(f"{self.name}: update() with predictions and references before compute()")
        return self.score_features(np.concatenate(self._pred), np.concatenate(self._target))

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> SetScore:
        """Score two whole sets at once (does not touch the accumulated state)."""
        return self.score_features(self.features(check_images(pred, "pred")),
                                   self.features(check_images(target, "target")))


def build_metric(name: str, **kwargs: Any) -> Metric:
    """Build a registered metric; unknown names list the valid ones; missing weights raise MetricUnavailable."""
    return METRICS.build({"type": name, **kwargs})


def try_build(name: str, **kwargs: Any) -> tuple[Metric | None, str | None]:
    """``(metric, None)``, or ``(None, reason)`` when the metric is unavailable here (e.g. weights missing).

    Unknown names and bad arguments still raise: those are mistakes, not missing files.
    """
    try:
        return build_metric(name, **kwargs), None
    except MetricUnavailable as e:
        return None, e.reason
