"""Calibration of the scratch detector's threshold: closed-form cases with stand-in detectors, and the stage
writing the calibrated threshold into its checkpoint, which the restore pipeline then uses."""

from __future__ import annotations

import pytest
import torch
from photo_sources import TensorPhotos
from torch import nn

from oldphoto_bench.degrade.presets import load_preset
from oldphoto_bench.seeding import torch_generator
from oldphoto_bench.train.scratch_calibration import CANDIDATES, calibrate_threshold, without_structured


def _photos(n: int = 3) -> TensorPhotos:
    g = torch_generator(3)
    return TensorPhotos([torch.rand(1, 3, 40, 40, generator=g) for _ in range(n)])


class _Constant(nn.Module):
    """A stand-in detector: probability ``c`` everywhere."""

    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :1], self.c)


def test_without_structured_drops_only_the_structured_stage():
    spec = load_preset("paper")
    names = [s["name"] for s in without_structured("paper")["stages"]]
    assert "structured" not in names and len(names) == len(spec["stages"]) - 1


@pytest.mark.parametrize("c", [0.3, 0.62])
def test_a_constant_detector_gets_the_lowest_threshold_above_it(c):
    out = calibrate_threshold(_Constant(c), _photos(), "scratch", n=4, seed=1, crop=32, max_false_positive=0.01)
    # every negative pixel is flagged at t <= c (false positives 100%), none above: the budget forces t > c
    assert out["met_budget"] and out["false_positive"] == 0.0
    assert out["threshold"] == pytest.approx(min(float(t) for t in CANDIDATES if t > c))
    assert out["released"]["false_positive"] == (1.0 if c >= 0.4 else 0.0)


def test_scratch_stage_saves_a_calibrated_threshold_that_restore_uses(tmp_path):
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.train import train_stage
    from oldphoto_bench.train.artifacts import load_scratch_threshold

    for stage in ("vae-a", "vae-b", "mapping", "scratch"):
        train_stage(stage, "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    t = load_scratch_threshold(tmp_path)
    assert t is not None and 0.05 <= t <= 0.99
    assert Restorer(tmp_path, with_scratch=True, faces=False).threshold == t
    assert Restorer(tmp_path, with_scratch=True, faces=False, threshold=0.4).threshold == 0.4
