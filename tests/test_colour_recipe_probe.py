"""benchmarks/colour_recipe_probe.py: the bank ages photos as the colour stage does (deterministically, unaged
photos kept as they are), and training on it learns a known global colour change."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from colour_recipe_probe import make_bank, train_on_bank  # noqa: E402
from photo_sources import TensorPhotos  # noqa: E402

from oldphoto_bench.models.colour import apply_colour  # noqa: E402


def photos(n: int = 3) -> TensorPhotos:
    gen = torch.Generator().manual_seed(0)
    coarse = [torch.rand(1, 3, 6, 8, generator=gen) for _ in range(n)]
    return TensorPhotos([F.interpolate(c, size=(60, 80), mode="bilinear", align_corners=False) for c in coarse])


def test_bank_is_deterministic_and_has_one_thumbnail_per_ageing():
    a = make_bank(photos(), agings=2, size=16, side=64, seed=3, progress=False)
    b = make_bank(photos(), agings=2, size=16, side=64, seed=3, progress=False)
    assert a["clean"].shape == a["aged"].shape == (6, 3, 16, 16)
    assert torch.equal(a["aged"], b["aged"]) and torch.equal(a["clean"], b["clean"])
    assert not torch.equal(a["aged"][:3], a["aged"][3:])      # the second ageing differs from the first
    unaged = make_bank(photos(), agings=1, size=16, side=64, clean_fraction=1.0, progress=False)
    assert torch.equal(unaged["aged"], unaged["clean"])


def test_training_on_the_bank_learns_a_global_colour_change():
    clean = make_bank(photos(4), agings=1, size=16, side=64, clean_fraction=1.0, progress=False)["clean"]
    faded = 0.5 * clean + torch.tensor([0.3, 0.25, 0.1])[:, None, None]   # a fade towards a warm paper colour
    bank = {"clean": clean, "aged": faded}
    untrained = train_on_bank(bank, steps=0, model={"n_down": 2, "hidden": 32}, progress=False)
    with torch.no_grad():
        assert torch.equal(apply_colour(faded, untrained(faded)), faded)   # starts as the identity
    net = train_on_bank(bank, steps=300, model={"n_down": 2, "hidden": 32}, lr=3e-3, batch_size=4, progress=False)
    with torch.no_grad():
        after = (apply_colour(faded, net(faded)) - clean).abs().mean()
    assert after < 0.3 * (faded - clean).abs().mean()


def test_holdout_keeps_every_nth_photo_out_of_the_bank():
    from colour_recipe_probe import split_every

    kept, held = split_every(photos(7), 3)
    assert kept.indices == [0, 1, 3, 4, 6] and held.indices == [2, 5]
    assert torch.equal(held[1].image, photos(7)[5].image)
    assert len(make_bank(photos(7), agings=1, size=16, side=64, holdout=3, progress=False)["aged"]) == 5
