"""benchmarks/torn_component_features.py: its ROC area is the Mann-Whitney U statistic over n_pos * n_neg."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from torn_component_features import auc  # noqa: E402


def test_auc_is_the_mann_whitney_u_over_the_pairs():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.5, 1.0, 37).round(1), rng.normal(0.0, 1.0, 23).round(1)  # rounded: ties occur
    u = mannwhitneyu(pos, neg, alternative="two-sided").statistic                    # ties count half
    assert math.isclose(auc(list(pos), list(neg)), u / (len(pos) * len(neg)), rel_tol=1e-12)
    assert auc([2.0, 3.0], [0.0, 1.0]) == 1.0 and auc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert auc([1.0], [1.0]) == 0.5
    assert math.isnan(auc([], [1.0]))
