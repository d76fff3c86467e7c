"""The tables behind the command line's checks cover what ships: every degradation op argument has an
allowed range and the shipped presets lie inside them, every shipped recipe passes the config schema, and
a checkpoint holding pickled objects is refused with our message."""

from __future__ import annotations

import argparse

import pytest
import torch


def test_every_op_argument_has_a_limit_and_shipped_presets_pass():
    from oldphoto_bench.degrade import OPS, Synthesizer, preset_names
    from oldphoto_bench.degrade.limits import LIMITS, op_arguments

    for name in OPS.names():
        takes = set(op_arguments(OPS.get(name)))
        assert set(LIMITS.get(name, {})) == takes, f"op {name}: limits for {sorted(LIMITS.get(name, {}))}, takes {takes}"
    for preset in preset_names():
        Synthesizer(preset)  # raises if a shipped preset broke its own limits


def test_every_shipped_recipe_and_stage_passes_the_schema():
    from oldphoto_bench.config import shipped_configs
    from oldphoto_bench.train import STAGES
    from oldphoto_bench.train.recipes import resolve_config

    for recipe in shipped_configs("train"):
        for stage in STAGES.names():
            resolve_config(recipe, stage)


def test_pickled_objects_are_refused_without_torchs_hint(tmp_path):
    from oldphoto_bench.train.checkpoint import load_tensors

    torch.save({"format": 1, "payload": argparse.Namespace(run="anything")}, tmp_path / "x.pt")
    with pytest.raises(ValueError) as err:
        load_tensors(tmp_path / "x.pt", what="checkpoint")
    msg = str(err.value)
    assert "argparse.Namespace" in msg and "not loaded" in msg and "weights_only" not in msg and "\n" not in msg
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")  # plain tensors still load
    assert torch.equal(load_tensors(tmp_path / "ok.pt")["w"], torch.ones(2))
