"""Summarising per-image values: mean over finite values, a 95% confidence interval, and what was left out.

PSNR of an image restored exactly is ``+inf``. Averaging it would make the whole method ``inf``; capping it
(e.g. at 100 dB) would invent a number. We do neither: the mean and its interval are over the *finite*
values, and the count of infinite values is reported next to them (a report writes e.g.
``31.20 ± 0.45 (2 identical)``). NaN values (a failed computation) are counted separately and excluded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Aggregate:
    """``mean`` and ``ci95`` (half width) over the ``n_finite`` finite values; ``n`` counts every value given.

    ``n_posinf`` / ``n_neginf`` / ``n_nan`` count the values left out. ``mean`` is NaN when no value is finite;
    ``ci95`` is NaN with fewer than two finite values.
    """

    mean: float
    ci95: float
    std: float
    n: int
    n_finite: int
    n_posinf: int
    n_neginf: int
    n_nan: int

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def format(self, digits: int = 3) -> str:
        """``"31.200 ± 0.450"``, with ``" (+inf x2)"`` appended when values were left out."""
        if math.isnan(self.mean):
            text = "n/a"
        elif math.isnan(self.ci95):
            text = f"{self.mean:.{digits}f}"
        else:
            text = f"{self.mean:.{digits}f} \u00b1 {self.ci95:.{digits}f}"
        extra = [f"{label} x{k}" for label, k in (("+inf", self.n_posinf), ("-inf", self.n_neginf),
                                                  ("nan", self.n_nan)) if k]
        return text + (f" ({', '.join(extra)})" if extra else "")


def aggregate(values: Any) -> Aggregate:
    """Mean ± half width of the 95% Student-t confidence interval, ``t_{0.975, n-1} * s / sqrt(n)``,
    over the finite entries of ``values`` (any 1-D array-like); infinities and NaNs are counted, not averaged.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    n_f = int(finite.size)
    mean = float(finite.mean()) if n_f else float("nan")
    if n_f >= 2:
        std = float(finite.std(ddof=1))
        half = float(stats.t.ppf(0.975, n_f - 1) * std / math.sqrt(n_f))
    else:
        std, half = float("nan"), float("nan")
    return Aggregate(mean=mean, ci95=half, std=std, n=int(v.size), n_finite=n_f,
                     n_posinf=int(np.isposinf(v).sum()), n_neginf=int(np.isneginf(v).sum()),
                     n_nan=int(np.isnan(v).sum()))
