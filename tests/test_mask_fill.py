"""The damage mask's fill before the latent translation (restore/inpaint.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from oldphoto_bench.restore import Restorer
from oldphoto_bench.restore.inpaint import MASK_FILLS, dilate_mask, fill_mask
from oldphoto_bench.seeding import numpy_rng


def _scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth photo, the same photo with a white scratch across it, and the scratch's mask."""
    rng = numpy_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 4, 4)).astype(np.float32))
    clean = torch.nn.functional.interpolate(coarse, size=(48, 64), mode="bilinear", align_corners=False)
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., 20:22, 5:60] = 1.0
    scratched = torch.where(mask > 0.5, torch.ones_like(clean), clean)
    return clean, scratched, mask


def test_dilation_matches_scipy():
    mask = (torch.from_numpy(numpy_rng(1).random((1, 1, 30, 40))) > 0.97).float()
    for px in (0, 1, 2):
        ref = ndimage.binary_dilation(mask[0, 0].numpy() > 0, structure=np.ones((2 * px + 1,) * 2)) if px else \
            mask[0, 0].numpy() > 0
        assert np.array_equal(dilate_mask(mask, px)[0, 0].numpy() > 0.5, ref)


def test_telea_fill_removes_the_scratch_and_keeps_the_rest():
    clean, scratched, mask = _scene()
    filled, grown = fill_mask(scratched, mask, "telea", dilation=1)
    assert filled.shape == clean.shape and filled.dtype == torch.float32
    assert float(grown.sum()) > float(mask.sum())                      # grown by a pixel
    outside = grown < 0.5
    assert torch.equal(filled[outside.expand_as(clean)], scratched[outside.expand_as(clean)])  # exactly
    err_before = (scratched - clean).abs()[mask.expand_as(clean) > 0.5].mean()
    err_after = (filled - clean).abs()[mask.expand_as(clean) > 0.5].mean()
    assert float(err_after) < 0.1 * float(err_before)                 # a smooth photo is filled back closely


def test_fill_none_and_unknown_names():
    _, scratched, mask = _scene()
    image, same = fill_mask(scratched, mask, "none")
    assert image is scratched and same is mask
    with pytest.raises(KeyError, match="telea, none"):
        fill_mask(scratched, mask, "white")
    assert MASK_FILLS == ("telea", "none")


def test_restorer_fills_the_mask_before_the_translation(smoke_runs):
    _, scratched, mask = _scene(2)
    telea = Restorer(smoke_runs, faces=False)
    plain = Restorer(smoke_runs, faces=False, mask_fill="none")
    assert telea.mask_fill == "telea" and plain.mask_fill == "none"
    a, b = telea.restore_global(scratched, mask), plain.restore_global(scratched, mask)
    assert a.shape == b.shape == scratched.shape and not torch.allclose(a, b)
    filled, grown = fill_mask(scratched, mask)
    assert torch.allclose(a, plain.restore_global(filled, grown))     # = fill, then the released path
    with pytest.raises(KeyError, match="valid names: telea, none"):
        Restorer(smoke_runs, faces=False, mask_fill="white")


def test_small_components_are_dropped_like_skimage_regions():
    from skimage.measure import label, regionprops

    from oldphoto_bench.restore.inpaint import drop_small_components

    mask = (torch.from_numpy(numpy_rng(4).random((1, 1, 40, 50))) > 0.8).float()
    mask[..., 30, 5:45] = 1.0                                            # one long scratch
    for area in (0, 1, 5, 20):
        got = drop_small_components(mask, area)[0, 0].numpy() > 0.5
        labels = label(mask[0, 0].numpy() > 0.5, connectivity=2)
        ref = np.zeros_like(got)
        for region in regionprops(labels):
            if region.area >= area:
                ref[labels == region.label] = True
        assert np.array_equal(got, ref)
    assert drop_small_components(mask, 20)[0, 0, 30, 5:45].eq(1).all()   # the scratch survives
    assert torch.equal(drop_small_components(torch.zeros(1, 1, 8, 8), 48), torch.zeros(1, 1, 8, 8))


def test_keep_components_keeps_or_drops_whole_components_like_skimage_regions():
    from skimage.measure import label, regionprops

    from oldphoto_bench.restore.inpaint import drop_small_components, keep_components

    mask = (torch.from_numpy(numpy_rng(5).random((1, 1, 60, 70))) > 0.7).float()
    mask[..., 50, 5:65] = 1.0                                            # one long scratch
    assert torch.equal(keep_components(mask, 1.0, numpy_rng(0), 20), drop_small_components(mask, 20))
    assert not keep_components(mask, 0.0, numpy_rng(0), 20).any()
    regions = regionprops(label(mask[0, 0].numpy() > 0.5, connectivity=2))
    big = [r for r in regions if r.area >= 5]
    got = keep_components(mask, 0.5, numpy_rng(1), 5)[0, 0].numpy() > 0.5
    kept = [r for r in big if got[tuple(r.coords.T)].all()]
    for r in regions:                                                    # each region wholly in or out
        assert got[tuple(r.coords.T)].all() or not got[tuple(r.coords.T)].any()
    assert got.sum() == sum(r.area for r in kept) and 0 < len(kept) < len(big)
    assert torch.equal(keep_components(mask, 0.5, numpy_rng(1), 5), keep_components(mask, 0.5, numpy_rng(1), 5))
    with pytest.raises(ValueError, match="keep must be in"):
        keep_components(mask, 1.5, numpy_rng(0))


def test_mapping_trains_on_detector_like_masks(tmp_path):
    from types import SimpleNamespace

    from oldphoto_bench.restore.inpaint import fill_mask
    from oldphoto_bench.train import train_stage
    from oldphoto_bench.train.mapping_stage import MappingStage

    for stage in ("vae-b", "vae-a"):
        train_stage(stage, "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    out = train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False,
                      overrides=["schedule.steps=2", "data.mapping_mask=partial", "data.mapping_mask_keep=0.5"])
    assert out.is_file()
    with pytest.raises(KeyError, match="valid names: ground-truth, partial"):
        train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False, overwrite=True,
                    overrides=["schedule.steps=1", "data.mapping_mask=oracle"])
    # the step's masks: keep 1 fills every component >= 48 px as restore's fill does; ground-truth: unchanged
    x = torch.from_numpy(numpy_rng(2).random((2, 3, 32, 32))).float()
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 10, 2:30] = 1.0                                           # 28 px: under the component filter
    mask[1, :, 5:9, 4:28] = 1.0                                          # 96 px: a detected piece
    stage = SimpleNamespace(mask_mode="partial", mask_keep=1.0, seed=0, ctx=SimpleNamespace(dist=SimpleNamespace(rank=0)))
    got_x, got_m = MappingStage.detected_masks(stage, x, mask, step=3)
    assert torch.equal(got_x[0], x[0]) and not got_m[0].any()
    want_x, want_m = fill_mask(x[1:], mask[1:])
    assert torch.equal(got_x[1:], want_x) and torch.equal(got_m[1:], want_m)
    stage.mask_mode = "ground-truth"
    assert all(a is b for a, b in zip(MappingStage.detected_masks(stage, x, mask, 3), (x, mask), strict=True))
