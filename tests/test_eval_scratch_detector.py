"""benchmarks/eval_scratch_detector.py: a threshold scan from one detector pass gives the masks the pipeline
gives at each threshold."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from eval_scratch_detector import masks_at  # noqa: E402

from oldphoto_bench.seeding import torch_generator  # noqa: E402


def test_masks_at_match_the_pipeline_at_each_threshold(smoke_runs, tmp_path):
    from oldphoto_bench.restore.damage import DamageDetector
    from oldphoto_bench.train import train_stage

    runs = tmp_path / "runs"
    shutil.copytree(smoke_runs, runs)
    train_stage("torn", "smoke", runs=runs, data="embedded", progress=False, overrides=["schedule.steps=1"])
    image = torch.rand(1, 3, 48, 64, generator=torch_generator(7))
    # thresholds around the smoke detector's probabilities, so that the masks differ
    prob = DamageDetector(runs, min_component=0).scratch_probability(image)
    thresholds = [float(prob.quantile(q)) for q in (0.2, 0.5, 0.9)]
    damage = DamageDetector(runs, min_component=0, torn_threshold=0.5)
    kept = damage.threshold
    got = masks_at(damage, image, thresholds)
    assert damage.threshold == kept  # the detector is left as it was
    for t, mask in zip(thresholds, got, strict=True):
        reference = DamageDetector(runs, threshold=t, min_component=0, torn_threshold=0.5)(image).mask
        assert torch.equal(mask, reference)
    assert not torch.equal(got[0], got[-1])
