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
