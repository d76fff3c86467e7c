"""Detection metrics for binary masks: precision, recall, F1 and IoU at a threshold, and ROC AUC.

Inputs are tensors or arrays of any (matching) shape: ``scores`` are probabilities (or any real score,
higher = scratch), ``target`` is the true mask (> 0.5 = scratch). Pixels are pooled (micro-averaged) over
everything passed in; :class:`MaskMetrics` pools over a data set image by image.

Conventions where a ratio is 0/0: precision with no predicted positives, recall with no true positives,
F1 and IoU with neither are 1.0 when there is nothing to find and nothing was found (a perfect answer on a
scratch-free image) and otherwise 0.0; AUC is ``nan`` without both classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def _flat(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x).reshape(-1)


def _binary(target: torch.Tensor | np.ndarray) -> np.ndarray:
    t = _flat(target)
    return t if t.dtype == np.bool_ else t.astype(np.float64) > 0.5


@dataclass
class Confusion:
    """Pixel counts of a thresholded prediction against a mask."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def precision(self) -> float:
        """``TP / (TP + FP)``."""
        return _ratio(self.tp, self.tp + self.fp, empty=1.0 if self.fn == 0 else 0.0)

    @property
    def recall(self) -> float:
        """``TP / (TP + FN)``."""
        return _ratio(self.tp, self.tp + self.fn, empty=1.0 if self.fp == 0 else 0.0)

    @property
    def f1(self) -> float:
        """``2 TP / (2 TP + FP + FN)`` (= harmonic mean of precision and recall)."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, empty=1.0)

    @property
    def iou(self) -> float:
        """``TP / (TP + FP + FN)`` (Jaccard index of predicted and true masks)."""
        return _ratio(self.tp, self.tp + self.fp + self.fn, empty=1.0)


def _ratio(num: int, den: int, empty: float) -> float:
    return empty if den == 0 else num / den


def confusion(scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
              threshold: float = 0.5) -> Confusion:
    """Counts of ``pred = scores >= threshold`` (a bool ``scores`` is used as is) against ``target > 0.5``."""
    s, t = _flat(scores), _binary(target)
    if s.shape != t.shape:
        raise ValueError(f"scores and target sizes differ: {s.size} vs {t.size}")
    p = s if s.dtype == np.bool_ else s >= threshold
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Confusion(tp, fp, fn, int(t.size) - tp - fp - fn)


def precision_recall(scores, target, threshold: float = 0.5) -> tuple[float, float]:
    """``(precision, recall)`` of ``scores >= threshold``."""
    c = confusion(scores, target, threshold)
    return c.precision, c.recall


def f1_score(scores, target, threshold: float = 0.5) -> float:
    """F1 (= Dice coefficient of the binary masks) of ``scores >= threshold``."""
    return confusion(scores, target, threshold).f1


def iou_score(scores, target, threshold: float = 0.5) -> float:
    """Intersection over union of ``scores >= threshold`` and the mask."""
    return confusion(scores, target, threshold).iou


def roc_auc(scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Area under the ROC curve via the rank statistic (Mann-Whitney U), exact with ties.

    ``AUC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)`` where ``R_+`` is the sum of the (tie-averaged, 1-based)
    ranks of the positives' scores among all scores: the probability that a random scratch pixel scores
    higher than a random clean one, ties counting one half. ``nan`` if either class is absent. O(n log n).
    """
    s, t = _flat(scores).astype(np.float64), _binary(target)
    if s.shape != t.shape:
        raise ValueError(f"scores and target sizes differ: {s.size} vs {t.size}")
    n_pos = int(np.count_nonzero(t))
    n_neg = int(t.size) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # Tied scores share the mean of the ranks they span: last rank of the group minus (count - 1) / 2.
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum_pos = float(mean_rank[inverse][t].sum())
    return (rank_sum_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


@dataclass
class MaskMetrics:
    """Pools pixels over a data set: ``update(scores, target)`` per image or batch, then :meth:`compute`.

    Counts at ``threshold`` are exact integers; AUC needs every score, so scores are kept as float32 (4 bytes
    plus 1 per pixel: fine for evaluation sets of a few hundred 256-pixel crops).
    """

    threshold: float = 0.5
    counts: Confusion = field(default_factory=Confusion)
    _scores: list[np.ndarray] = field(default_factory=list, repr=False)
    _targets: list[np.ndarray] = field(default_factory=list, repr=False)

    def update(self, scores, target) -> None:
        self.counts = self.counts + confusion(scores, target, self.threshold)
        self._scores.append(_flat(scores).astype(np.float32))
        self._targets.append(_binary(target))

    def compute(self) -> dict[str, float]:
        """``{"precision", "recall", "f1", "iou", "auc", "threshold", "pixels", "positive_fraction"}``."""
        c = self.counts
        n = c.tp + c.fp + c.fn + c.tn
        auc = (roc_auc(np.concatenate(self._scores), np.concatenate(self._targets))
               if self._scores else float("nan"))
        return {"precision": c.precision, "recall": c.recall, "f1": c.f1, "iou": c.iou, "auc": auc,
                "threshold": self.threshold, "pixels": n,
                "positive_fraction": (c.tp + c.fn) / n if n else float("nan")}


def segmentation_report(scores, target, threshold: float = 0.5) -> dict[str, float]:
    """All metrics of one set of scores against a mask (see :meth:`MaskMetrics.compute`)."""
    m = MaskMetrics(threshold)
    m.update(scores, target)
    return m.compute()
