"""PairsDataset: deterministic crops, flips, padding and degradations; DataLoader workers; collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from oldphoto_bench.data import EmbeddedSource, PairsDataset, Sample, Source, collate
from oldphoto_bench.data.pairs import pad_to


def _synth_module():
    try:
        from oldphoto_bench.degrade import OPS, Synthesizer
    except ImportError as e:  # the degradation package is still being written
        pytest.skip(f"degradation package not importable: {e}")
    if "gaussian_noise" not in OPS:
        pytest.skip("gaussian_noise op not registered yet")
    return OPS, Synthesizer


@pytest.fixture
def synth():
    OPS, Synthesizer = _synth_module()
    groups = [{"p": 1.0, "ops": [{"type": "gaussian_noise", "sigma": [5.0, 30.0]}]}]
    if "scratches" in OPS:  # a structured op too, so that the mask is exercised
        groups.append({"p": 0.5, "ops": [{"type": "scratches"}]})
    return Synthesizer({"name": "test", "stages": [{"groups": groups}]})


class ArraySource(Source):
    """In-memory photos of given sizes with seeded random pixels (module level: picklable for workers)."""

    label = "arrays"

    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        self.images = [torch.from_numpy(rng.random((1, 3, h, w), dtype=np.float32)) for h, w in sizes]

    def __len__(self):
        return len(self.images)

    def names(self):
        return [f"img{i}" for i in range(len(self))]

    def load(self, index):
        return Sample(self.images[index].clone(), f"img{index}", {"source": self.label, "index": index,
                                                               "was_gray": False})


SIZES = [(80, 96), (64, 120), (100, 70), (72, 72), (90, 110), (66, 81)]


def assert_items_equal(a, b):
    for key in ("clean", "degraded", "mask"):
        assert torch.equal(a[key], b[key]), key
    assert a["record"] == b["record"]


def test_items_are_deterministic_and_indices_differ(synth):
    src = ArraySource(SIZES)
    ds = PairsDataset(src, synth, crop=48, train=True, seed=3)
    again = PairsDataset(ArraySource(SIZES), synth, crop=48, train=True, seed=3)
    for i in range(len(ds)):
        assert_items_equal(ds[i], ds[i])
        assert_items_equal(ds[i], again[i])
    assert_items_equal(ds[-1], ds[len(ds) - 1])
    other_seed = PairsDataset(src, synth, crop=48, train=True, seed=4)
    assert not torch.equal(ds[0]["degraded"], other_seed[0]["degraded"])
    # same photo at two indices: different crops and noise
    twin = PairsDataset(ArraySource([(80, 96), (80, 96)], seed=9), synth, crop=48, seed=3)
    assert twin.source.images[0].shape == twin.source.images[1].shape
    twin.source.images[1] = twin.source.images[0].clone()
    a, b = twin[0], twin[1]
    assert a["record"]["crop"] != b["record"]["crop"] or a["record"]["flip"] != b["record"]["flip"]
    assert not torch.equal(a["degraded"] - a["clean"], b["degraded"] - b["clean"])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_train_crop_matches_record_and_varies(synth):
    src = ArraySource(SIZES * 4)
    ds = PairsDataset(src, synth, crop=(40, 56), train=True, seed=0)
    flips, offsets = set(), set()
    for i in range(len(ds)):
        item = ds[i]
        rec = item["record"]
        top, left, h, w = rec["crop"]
        assert (h, w) == (40, 56) and rec["pad"] == [0, 0, 0, 0]
        ref = src.images[i][0, :, top : top + h, left : left + w]
        if rec["flip"]:
            ref = ref.flip(-1)
        assert torch.equal(item["clean"], ref)
        assert item["clean"].shape == item["degraded"].shape == (3, 40, 56)
        assert item["mask"].shape == (1, 40, 56) and item["mask"].dtype == torch.float32
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert 0.0 <= float(item["degraded"].min()) and float(item["degraded"].max()) <= 1.0
        assert (rec["index"], rec["name"], rec["source"], rec["epoch"]) == (i, f"img{i}", "arrays", 0)
        flips.add(rec["flip"])
        offsets.add((top, left))
    assert flips == {True, False}
    assert len(offsets) > len(ds) // 2


def test_eval_centre_crop_whole_image_and_epoch_ignored(synth):
    src = ArraySource(SIZES)
    ds = PairsDataset(src, synth, crop=32, train=False, seed=0)
    for i in range(len(ds)):
        item = ds[i]
        _, _, hh, ww = src.images[i].shape
        top, left = (hh - 32) // 2, (ww - 32) // 2
        assert torch.equal(item["clean"], src.images[i][0, :, top : top + 32, left : left + 32])
        assert item["record"]["flip"] is False and item["record"]["epoch"] is None
    before = ds[2]
    ds.set_epoch(5)
    assert_items_equal(before, ds[2])
    whole = PairsDataset(src, synth, crop=None, train=False)
    for i in range(len(whole)):
        assert torch.equal(whole[i]["clean"], src.images[i][0])


def test_set_epoch_changes_training_crops_reproducibly(synth):
    ds = PairsDataset(ArraySource(SIZES), synth, crop=32, train=True, seed=1)
    epoch0 = [ds[i] for i in range(len(ds))]
    ds.set_epoch(1)
    epoch1 = [ds[i] for i in range(len(ds))]
    assert all(b["record"]["epoch"] == 1 for b in epoch1)
    changed = [a["record"]["crop"] != b["record"]["crop"] for a, b in zip(epoch0, epoch1, strict=True)]
    assert sum(changed) >= len(ds) - 1
    ds.set_epoch(0)
    for i in range(len(ds)):
        assert_items_equal(ds[i], epoch0[i])
    with pytest.raises(ValueError):
        ds.set_epoch(-1)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"),
                                          ("constant", "constant"), ("circular", "wrap")])
@pytest.mark.parametrize("h,w,th,tw", [(20, 10, 32, 32), (5, 3, 40, 21), (9, 12, 10, 12), (2, 4, 6, 9),
                                       (30, 30, 8, 8)])
def test_pad_to_matches_numpy(mode, np_mode, h, w, th, tw):
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32))
    out, pad = pad_to(x, th, tw, mode)
    ph, pw = max(0, th - h), max(0, tw - w)
    assert pad == [ph // 2, ph - ph // 2, pw // 2, pw - pw // 2]
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])), mode=np_mode)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_pad_to_one_pixel_side_is_repeated():
    x = torch.arange(4, dtype=torch.float32).view(1, 1, 1, 4)
    out, _ = pad_to(x, 3, 7, "reflect")
    ref = np.pad(np.pad(x.numpy(), ((0, 0), (0, 0), (0, 0), (1, 2)), mode="reflect"),
                 ((0, 0), (0, 0), (1, 1), (0, 0)), mode="edge")
    np.testing.assert_array_equal(out.numpy(), ref)


def test_small_photo_is_padded(synth):
    src = ArraySource([(20, 30), (50, 12)])
    for train in (True, False):
        ds = PairsDataset(src, synth, crop=48, train=train, seed=0)
        for i in range(len(ds)):
            item = ds[i]
            assert item["clean"].shape == (3, 48, 48) and item["mask"].shape == (1, 48, 48)
            top, left, h, w = item["record"]["crop"]
            pt, pb, pl, pr = item["record"]["pad"]
            assert (pt + h + pb, pl + w + pr) == (48, 48)
            inner = item["clean"][:, pt : pt + h, pl : pl + w]
            if item["record"]["flip"]:
                inner = item["clean"].flip(-1)[:, pt : pt + h, pl : pl + w]
            assert torch.equal(inner, src.images[i][0, :, top : top + h, left : left + w])
    with pytest.raises(ValueError, match="pad mode"):
        PairsDataset(src, synth, pad_mode="mirror")
    with pytest.raises(ValueError, match="positive"):
        PairsDataset(src, synth, crop=0)


def test_degraded_replays_from_record(synth):
    from oldphoto_bench.degrade import Synthesizer

    ds = PairsDataset(ArraySource(SIZES), synth, crop=40, seed=2)
    for i in (0, 3):
        item = ds[i]
        out = Synthesizer.replay(item["clean"][None].clone(), item["record"])
        assert torch.equal(out.image[0], item["degraded"])
        assert torch.equal(out.mask[0], item["mask"])
        assert not torch.equal(item["degraded"], item["clean"])  # gaussian noise always fires (p=1)


def test_without_synthesizer_degraded_is_clean():
    ds = PairsDataset(ArraySource(SIZES), None, crop=24, seed=0)
    item = ds[1]
    assert torch.equal(item["degraded"], item["clean"]) and not item["mask"].any()
    assert item["record"]["ops"] == []


def test_dataloader_workers_match_single_process(synth):
    ds = PairsDataset(ArraySource(SIZES), synth, crop=32, train=True, seed=7)
    ds.set_epoch(2)
    single = list(DataLoader(ds, batch_size=2, num_workers=0, collate_fn=collate))
    multi = list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate))
    assert len(single) == len(multi) == 3
    for a, b in zip(single, multi, strict=True):
        assert a["clean"].shape == (2, 3, 32, 32) and a["mask"].shape == (2, 1, 32, 32)
        assert isinstance(a["record"], list) and len(a["record"]) == 2
        for key in ("clean", "degraded", "mask"):
            assert torch.equal(a[key], b[key])
        assert a["record"] == b["record"]
        assert [r["epoch"] for r in a["record"]] == [2, 2]


def test_collate_rejects_mixed_sizes():
    ds = PairsDataset(ArraySource(SIZES[:2]), None, crop=None, train=False)
    with pytest.raises(ValueError, match="batch_size=1"):
        collate([ds[0], ds[1]])
    with pytest.raises(ValueError):
        collate([])


def test_embedded_photos_with_shipped_preset():
    _, Synthesizer = _synth_module()
    try:
        synth = Synthesizer("unstructured")
    except (KeyError, FileNotFoundError) as e:
        pytest.skip(f"unstructured preset not available: {e}")
    ds = PairsDataset(EmbeddedSource(["camera", "chelsea"]), synth, crop=64, seed=0)
    batch = collate([ds[0], ds[1]])
    assert batch["degraded"].shape == (2, 3, 64, 64) and batch["degraded"].dtype == torch.float32
    assert [r["name"] for r in batch["record"]] == ["camera", "chelsea"]
    assert batch["record"][0]["was_gray"] is True and batch["record"][1]["was_gray"] is False
