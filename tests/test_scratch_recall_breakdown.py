"""benchmarks/scratch_recall_breakdown.py: each structured op's own mask and the visibility of the damage."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from scratch_recall_breakdown import damage_visibility, op_masks  # noqa: E402

from oldphoto_bench.degrade import Synthesizer  # noqa: E402
from oldphoto_bench.imageio import rgb_to_luma  # noqa: E402
from oldphoto_bench.seeding import torch_generator  # noqa: E402


def _photo() -> torch.Tensor:
    return torch.rand(1, 3, 64, 80, generator=torch_generator(3)) * 0.5 + 0.25


def test_op_masks_unite_to_the_synthesizers_mask():
    clean = _photo()
    for seed in range(4):
        aged = Synthesizer("scratch")(clean, seed=seed)
        masks = op_masks(clean, aged.records[0])
        assert masks, "the scratch preset draws structured defects on nearly every photo"
        union = np.zeros((64, 80), bool)
        for m in masks.values():
            union |= m
        np.testing.assert_array_equal(union, aged.mask[0, 0].numpy() > 0.5)


def test_visibility_is_the_luma_change_of_the_defects_alone():
    clean = _photo()
    # only structured ops: the undamaged replay is the clean photo itself
    aged = Synthesizer.single("scratches")(clean, seed=1)
    vis = damage_visibility(clean, aged.image, aged.records[0])
    expected = (rgb_to_luma(aged.image) - rgb_to_luma(clean)).abs()[0, 0].numpy()
    np.testing.assert_allclose(vis, expected, atol=1e-7)
    assert vis[aged.mask[0, 0].numpy() < 0.5].max() == 0.0  # nothing changes outside the damage mask
    assert vis.max() > 0.05
    # no structured op at all: no visibility anywhere
    aged = Synthesizer.single("gaussian_blur")(clean, seed=2)
    assert damage_visibility(clean, aged.image, aged.records[0]).max() == 0.0
