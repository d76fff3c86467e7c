"""benchmarks/sharpness_by_stage.py: each stage's output keeps the print's size, and the last one is the
pipeline's own global stage."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from sharpness_by_stage import STAGES, stage_outputs  # noqa: E402

from oldphoto_bench.seeding import torch_generator  # noqa: E402


def test_stage_outputs_match_the_pipeline(smoke_runs):
    from oldphoto_bench.restore import Restorer

    restorer = Restorer(smoke_runs, with_scratch=False, faces=False)
    image = torch.rand(1, 3, 37, 50, generator=torch_generator(5))  # not a multiple of the VAE's stride
    outs = stage_outputs(restorer, image)
    assert tuple(outs) == STAGES
    for out in outs.values():
        assert out.shape == image.shape and out.dtype == torch.float32
    assert torch.equal(outs["global"], restorer.restore_global(image))
    raw = Restorer(smoke_runs, with_scratch=False, faces=False, guide_radius=0)
    assert torch.equal(outs["decoded"], raw.restore_global(image))  # the translation before the guided filter
    assert torch.equal(outs["colour"], restorer.correct_colour(image))
    # the old-photo encoder differs from the clean one, so skipping the mapping is not VAE_B's reconstruction
    assert not torch.equal(outs["vae_b"], outs["no_mapping"])
