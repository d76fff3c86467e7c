"""The torn-piece detector: its training data (whole photos aged, thumbnailed with their masks), the stage's
checkpoint, and the restore pipeline uniting its mask with the scratch detector's."""

from __future__ import annotations

import shutil

import pytest
import torch
from photo_sources import TensorPhotos
from torch import nn

from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.degrade.presets import load_preset
from oldphoto_bench.imageio import resize_max_side
from oldphoto_bench.seeding import derive_seed, torch_generator
from oldphoto_bench.train.torn_stage import preset_with_torn_p


def _photos(n: int = 2, h: int = 60, w: int = 80) -> TensorPhotos:
    g = torch_generator(4)
    return TensorPhotos([torch.rand(1, 3, h, w, generator=g) for _ in range(n)])


def _torn_only(p: float = 1.0) -> dict:
    """The paper preset with only its torn group, firing with probability ``p``."""
    spec = preset_with_torn_p("paper", p)
    spec["stages"] = [{**s, "groups": [g for g in s["groups"] if g["name"] == "torn"]}
                      for s in spec["stages"] if s["name"] == "structured"]
    return spec


def test_preset_with_torn_p_sets_only_the_torn_group():
    base, spec = load_preset("paper"), preset_with_torn_p("paper", 0.5)
    groups = {g["name"]: g["p"] for s in spec["stages"] for g in s["groups"]}
    before = {g["name"]: g["p"] for s in base["stages"] for g in s["groups"]}
    assert groups["torn"] == 0.5 and before["torn"] == 0.15
    assert {k: v for k, v in groups.items() if k != "torn"} == {k: v for k, v in before.items() if k != "torn"}
    with pytest.raises(KeyError, match="no group named 'torn'"):
        preset_with_torn_p("unstructured", 0.5)


def test_aged_thumbnail_mask_is_the_synthesizers_mask_area_averaged():
    from oldphoto_bench.train.colour_stage import AgedThumbnails

    src, spec = _photos(), _torn_only(1.0)
    ds = AgedThumbnails(src, spec, size=16, side=64, seed=3)
    item = ds[1]
    # independent reference: age the photo the same way and average the mask over 4 x 4 blocks by hand
    photo = resize_max_side(src.images[1], 64)  # 48 x 64
    seed = derive_seed(derive_seed(3, 0, 1), 1)
    mask = Synthesizer(spec)(photo, seed=seed).mask[0, 0]
    assert mask.mean() > 0.01  # a torn piece was drawn: the comparison means something
    assert tuple(photo.shape[-2:]) == (48, 64)
    blocks = mask.reshape(16, 3, 16, 4).mean(dim=(1, 3))  # 48 / 16 = 3 rows, 64 / 16 = 4 columns per cell
    expected = (blocks >= 0.5).float()
    got = item["mask"][0].flip(-1) if item["record"]["flip"] else item["mask"][0]
    assert torch.equal(got, expected)
    assert item["mask"].shape == (1, 16, 16) and item["degraded"].shape == (3, 16, 16)
    clean = AgedThumbnails(src, spec, size=16, side=64, seed=3, clean_fraction=1.0)[0]
    assert clean["mask"].sum() == 0 and clean["record"]["undamaged"]


class _Corner(nn.Module):
    """A stand-in torn detector: probability 1 in the top-left quarter of its input, 0 elsewhere."""

    thumbnail_size = 8

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x[:, :1])
        out[..., : x.shape[-2] // 2, : x.shape[-1] // 2] = 1.0
        return out


def test_torn_probability_upsamples_the_thumbnail_prediction():
    from oldphoto_bench.restore.torn import torn_probability

    prob = torn_probability(_Corner(), torch.rand(1, 3, 40, 60), size=8)
    assert prob.shape == (1, 1, 40, 60)
    assert float(prob[0, 0, :15, :20].min()) > 0.9999 and float(prob[0, 0, 25:, 35:].max()) < 1e-6
    with pytest.raises(ValueError, match="one RGB image"):
        torn_probability(_Corner(), torch.rand(1, 1, 40, 60), size=8)


def test_torn_stage_checkpoint_and_restore_unites_the_masks(smoke_runs, tmp_path):
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.train import train_stage
    from oldphoto_bench.train.artifacts import load_torn

    runs = tmp_path / "runs"
    shutil.copytree(smoke_runs, runs)
    without = Restorer(runs, with_scratch=True, faces=False)
    assert without.torn is None and without.torn_threshold is None
    train_stage("torn", "smoke", runs=runs, data="embedded", progress=False, overrides=["schedule.steps=2"])
    net = load_torn(runs)
    assert net.thumbnail_size == 32 and net.calibrated_threshold == 0.7 and net.in_channels == 3

    restorer = Restorer(runs, with_scratch=True, faces=False, torn_threshold=0.5)
    assert restorer.torn is not None and restorer.torn_threshold == 0.5
    restorer.damage.torn = _Corner()  # a known torn mask: the top-left quarter of the photo
    x = torch.rand(1, 3, 64, 96, generator=torch_generator(1))
    res = restorer.restore(x)
    scratch = restorer.mask_from_probability(res.stages["scratch_probability"])
    torn = (res.stages["torn_probability"] >= 0.5).float()
    assert torch.equal(res.mask, torch.maximum(scratch, torn))
    assert float(res.mask[..., :24, :36].min()) == 1.0  # the quarter, less the bilinear transition at its edge
    assert torch.equal(restorer.detect_mask(x), res.mask)
    assert "torn" in res.details["seconds"]
    # torn=False leaves the torn-piece detector out
    assert Restorer(runs, with_scratch=True, faces=False, torn=False).torn is None


def test_torn_mask_keeps_only_components_of_high_mean_probability(smoke_runs, tmp_path):
    from oldphoto_bench.restore.damage import DamageDetector
    from oldphoto_bench.train import train_stage

    runs = tmp_path / "runs"
    shutil.copytree(smoke_runs, runs)
    train_stage("torn", "smoke", runs=runs, data="embedded", progress=False, overrides=["schedule.steps=1"])
    det = DamageDetector(runs, torn_threshold=0.8, torn_component_prob=0.9)
    prob = torch.zeros(1, 1, 20, 30)
    prob[..., 2:6, 2:6] = 0.95  # mean 0.95: kept
    prob[..., 10:15, 10:20] = 0.85  # mean 0.85: dropped
    prob[..., 10:12, 25:28] = torch.tensor([0.99, 0.81, 0.99])  # mean (0.99 + 0.81 + 0.99) / 3 = 0.93: kept
    got = det.torn_mask(prob)
    expected = torch.zeros_like(prob)
    expected[..., 2:6, 2:6] = 1.0
    expected[..., 10:12, 25:28] = 1.0
    assert torch.equal(got, expected)
    det.torn_component_prob = 0.0  # no filter: every pixel at or above the threshold
    assert torch.equal(det.torn_mask(prob), (prob >= 0.8).float())
