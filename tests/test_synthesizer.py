"""The Synthesizer engine: seeding, records, replay, batches, the released code's probabilities, preset errors."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
import torch
import yaml

from oldphoto_bench.degrade import OPS, Synthesizer
from oldphoto_bench.seeding import numpy_rng

GROUP_OF = {"gaussian_blur": "blur", "gaussian_noise": "noise", "speckle_noise": "noise", "salt_pepper": "noise",
            "low_resolution": "low_resolution", "jpeg": "jpeg", "grayscale": "grayscale"}


def images(n: int = 1, h: int = 40, w: int = 56, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(n, 3, h + 4, w + 4, generator=g), 5, stride=1)
    return smooth.contiguous()


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer("unstructured")


def test_same_seed_same_bytes_and_records(synth):
    x = images()
    for s in range(6):
        a, b = synth(x, s), synth(x.clone(), s)
        assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask)
        assert a.records == b.records
        assert a.image.shape == x.shape and a.image.dtype == torch.float32
        assert a.mask.shape == (1, 1, 40, 56) and not a.mask.any()  # unstructured ops damage no region
        assert 0.0 <= float(a.image.min()) and float(a.image.max()) <= 1.0


def test_different_seeds_differ(synth):
    x = images()
    outs = [synth(x, s) for s in range(8)]
    recs = [json.dumps(o.records[0]["ops"], sort_keys=True) for o in outs]
    assert len(set(recs)) == len(recs)
    fired = [o for o in outs if o.records[0]["ops"]]
    assert len(fired) >= 2
    assert any(not torch.equal(fired[0].image, o.image) for o in fired[1:])


def test_record_is_json_and_replays_bit_for_bit(synth):
    x = images()
    for s in range(10):
        out = synth(x, s)
        rec = out.records[0]
        text = json.dumps(rec)
        back = json.loads(text)
        assert back == rec
        assert back["seed"] == s and back["size"] == [40, 56] and back["preset"] == "unstructured"
        again = Synthesizer.replay(x, back)
        assert torch.equal(again.image, out.image) and torch.equal(again.mask, out.mask)
        assert torch.equal(Synthesizer.replay(x, synth.plan(s, 40, 56)).image, out.image)


def test_replay_checks_size(synth):
    rec = synth.plan(3, 40, 56)
    with pytest.raises(ValueError, match="size"):
        Synthesizer.replay(images(h=41), rec)


def test_batch_equals_single_calls(synth):
    n = 5
    x = images(n)
    seeds = [11, 12, 13, 14, 15]
    batch = synth(x, seeds)
    singles = [synth(x[i : i + 1], s) for i, s in enumerate(seeds)]
    assert torch.equal(batch.image, torch.cat([o.image for o in singles]))
    assert torch.equal(batch.mask, torch.cat([o.mask for o in singles]))
    assert batch.records == [o.records[0] for o in singles]
    replayed = Synthesizer.replay_batch(x, json.loads(json.dumps(batch.records)))
    assert torch.equal(replayed.image, batch.image)
    with pytest.raises(ValueError):
        synth(x, seeds[:-1])


def test_output_does_not_alias_or_modify_input():
    x = images()
    x_before = x.clone()
    empty = Synthesizer({"name": "nothing", "stages": [{"groups": [{"p": 0.0, "ops": [{"type": "grayscale"}]}]}]})
    out = empty(x, 0)
    assert out.records[0]["ops"] == []
    assert torch.equal(out.image, x)
    out.image.zero_()
    assert torch.equal(x, x_before)
    replayed = Synthesizer.replay(x, json.loads(json.dumps(empty.plan(0, 40, 56))))
    replayed.image.zero_()
    assert torch.equal(x, x_before)


# ---- the released code's probabilities (plan() touches no pixels, so thousands are cheap) -------------------------
N_PLANS = 2000


@pytest.fixture(scope="module")
def plans(synth):
    return [synth.plan(s, 64, 64) for s in range(N_PLANS)]


def _groups(rec):
    return [GROUP_OF[o["type"]] for o in rec["ops"]]


def _within_binomial(k: int, n: int, p: float, z: float = 4.5) -> bool:
    return abs(k / n - p) <= z * np.sqrt(p * (1 - p) / n)


def test_group_probabilities(plans):
    counts = Counter(g for r in plans for g in set(_groups(r)))
    for g in ("blur", "noise", "low_resolution", "jpeg"):
        assert _within_binomial(counts[g], N_PLANS, 0.7), (g, counts[g])
    assert _within_binomial(counts["grayscale"], N_PLANS, 0.1), counts["grayscale"]
    # each group fires at most once; grayscale (a later stage) is always last
    for r in plans:
        gs = _groups(r)
        assert len(gs) == len(set(gs))
        if "grayscale" in gs:
            assert gs[-1] == "grayscale"
    # groups fire independently: P(all four) = 0.7^4
    all_four = sum(all(g in _groups(r) for g in ("blur", "noise", "low_resolution", "jpeg")) for r in plans)
    assert _within_binomial(all_four, N_PLANS, 0.7**4)


def test_noise_choice_is_uniform(plans):
    kinds = Counter(o["type"] for r in plans for o in r["ops"] if GROUP_OF[o["type"]] == "noise")
    n = sum(kinds.values())
    for t in ("gaussian_noise", "speckle_noise", "salt_pepper"):
        assert _within_binomial(kinds[t], n, 1 / 3), kinds


def test_orders_are_permuted(plans):
    four = ("blur", "noise", "low_resolution", "jpeg")
    orders = Counter(tuple(g for g in _groups(r) if g in four) for r in plans)
    full = {o: c for o, c in orders.items() if len(o) == 4}
    assert set(full) == set(itertools.permutations(four))  # all 24 orders occur
    n = sum(full.values())
    firsts = Counter(o[0] for o, c in full.items() for _ in range(c))
    for g in four:
        assert _within_binomial(firsts[g], n, 0.25), firsts


# ---- custom presets --------------------------------------------------------------------------------------------
def test_custom_preset_dict_runs_ops_in_order_with_their_arguments():
    spec = {"name": "mine", "stages": [{"groups": [{"p": 1.0, "ops": [
        {"type": "gaussian_blur", "kernel_sizes": [5], "sigma": [2.0, 2.0]},
        {"type": "jpeg", "quality": [60, 60]}]}]}]}
    synth = Synthesizer(spec)
    x = images()
    out = synth(x, 4)
    rec = out.records[0]
    assert rec["preset"] == "mine"
    assert [o["type"] for o in rec["ops"]] == ["gaussian_blur", "jpeg"]
    assert rec["ops"][0]["params"] == {"kernel_size": 5, "sigma": 2.0}
    assert rec["ops"][1]["params"] == {"quality": 60}
    blur = OPS.build(spec["stages"][0]["groups"][0]["ops"][0])
    jpeg = OPS.build(spec["stages"][0]["groups"][0]["ops"][1])
    y, _ = blur.apply(x, {"kernel_size": 5, "sigma": 2.0})
    y, _ = jpeg.apply(y, {"quality": 60})
    assert torch.equal(out.image, y)


def test_choice_weights():
    spec = {"stages": [{"groups": [{"p": 1.0, "weights": [0, 1, 0], "choice": [
        {"type": "gaussian_noise"}, {"type": "grayscale"}, {"type": "jpeg"}]}]}]}
    synth = Synthesizer(spec)
    assert all([o["type"] for o in synth.plan(s, 8, 8)["ops"]] == ["grayscale"] for s in range(50))


def test_preset_from_yaml_path(tmp_path):
    spec = {"stages": [{"groups": [{"p": 1.0, "ops": [{"type": "grayscale"}]}]}]}
    path = tmp_path / "grey_only.yaml"
    path.write_text(yaml.safe_dump(spec))
    synth = Synthesizer(str(path))
    assert synth.name == "grey_only"
    out = synth(images(), 0)
    assert (out.image[:, 0] == out.image[:, 1]).all()


def test_unknown_op_lists_valid_names():
    spec = {"stages": [{"groups": [{"ops": [{"type": "sepia_tone"}]}]}]}
    with pytest.raises(KeyError) as err:
        Synthesizer(spec)
    msg = str(err.value)
    assert "sepia_tone" in msg and "gaussian_blur" in msg and "jpeg" in msg


@pytest.mark.parametrize("group,error", [
    ({"prob": 0.5, "ops": [{"type": "jpeg"}]}, KeyError),                      # unknown key
    ({"p": 0.5}, ValueError),                                                   # neither ops nor choice
    ({"ops": [{"type": "jpeg"}], "choice": [{"type": "jpeg"}]}, ValueError),   # both
    ({"p": 1.5, "ops": [{"type": "jpeg"}]}, ValueError),                        # p out of [0, 1]
    ({"weights": [1], "ops": [{"type": "jpeg"}]}, ValueError),                  # weights need choice
    ({"weights": [1], "choice": [{"type": "jpeg"}, {"type": "grayscale"}]}, ValueError),  # one per op
    ({"ops": [{"type": "jpeg", "qualty": [50, 60]}]}, KeyError),               # unknown op argument
    ({"ops": [{"type": "jpeg", "quality": [0, 60]}]}, ValueError),             # out of its range
    ({"choice": [{"type": "jpeg"}], "weights": [0]}, ValueError),               # no positive weight
])
def test_bad_groups_rejected(group, error):
    with pytest.raises(error):
        Synthesizer({"stages": [{"groups": [group]}]})


def test_bad_stage_keys_rejected():
    with pytest.raises(KeyError, match="shuffle"):
        Synthesizer({"stages": [{"shufle": True, "groups": []}]})


def test_plan_uses_only_its_seed():
    # interleaving other draws or plans does not change a plan
    synth = Synthesizer("unstructured")
    a = synth.plan(5, 32, 32)
    numpy_rng(0).random(100)
    synth.plan(6, 32, 32)
    assert synth.plan(5, 32, 32) == a
