"""Training stage ``scratch`` on the smoke recipe: files, eval.json, metrics against scikit-learn, exact
resume, loading, config checks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score, roc_auc_score

from oldphoto_bench.cli import main
from oldphoto_bench.data import PairsDataset, open_source
from oldphoto_bench.models import ScratchUNet, to_detector_input
from oldphoto_bench.seeding import derive_seed
from oldphoto_bench.train import (
    STAGES,
    evaluate_detector,
    evaluate_scratch,
    load_checkpoint,
    load_scratch,
    resolve_config,
    train_stage,
)

FAST = ["--set", "schedule.steps=3", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "scratch", "--config", "smoke", "--out", str(root), *FAST]) == 0
    return root


def test_smoke_run_writes_files_and_eval(runs):
    d = runs / "scratch"
    for name in ("last.pt", "config.yaml", "manifest.json", "log.csv", "run.log", "eval.json"):
        assert (d / name).is_file(), name
    with open(d / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert {"focal", "dice", "total"} <= set(rows[0])
    result = json.loads((d / "eval.json").read_text())
    for key in ("f1", "iou", "auc", "precision", "recall"):
        assert key in result and (result[key] is None or 0.0 <= result[key] <= 1.0), key
    assert result["images"] == 4 and result["threshold"] == 0.4 and result["preset"] == "scratch"
    assert "scratch eval on 4 held-back synthetic pairs" in (d / "run.log").read_text()


def test_evaluate_scratch_reproduces_the_stage_eval(runs):
    """The checkpoint, loaded and evaluated again, gives the numbers the stage wrote from its live network."""
    written = json.loads((runs / "scratch" / "eval.json").read_text())
    again = evaluate_scratch(runs, write=False)
    for key in ("f1", "iou", "auc", "precision", "recall", "pixels", "seed"):
        assert again[key] == pytest.approx(written[key], abs=1e-9), key


def test_load_scratch_is_frozen_eval_detector(runs):
    det = load_scratch(runs)
    assert isinstance(det, ScratchUNet) and not det.training
    assert not any(p.requires_grad for p in det.parameters())
    spec = load_checkpoint(runs / "scratch" / "last.pt")["specs"]["detector"]
    assert spec["type"] == "scratch_unet" and spec["depth"] == 2


def test_metrics_match_scikit_learn():
    source = open_source("embedded")
    model = ScratchUNet(depth=2, base_channels=4, max_channels=8, init_seed=3).eval()
    with torch.no_grad():  # a detector with spread-out scores, so that the threshold and the AUC matter
        model.head[1].weight.mul_(50.0)
    result = evaluate_detector(
        model, source, n=3, seed=11, preset="scratch", crop=32, threshold=0.5, batch_size=2
    )
    ds = PairsDataset(
        source, "scratch", crop=32, train=False, seed=derive_seed(11, 0)
    )  # pass 0 of the photos
    items = [ds[i] for i in range(3)]
    with torch.no_grad():
        prob = torch.cat(
            [model.predict_proba(to_detector_input(it["degraded"][None])) for it in items]
        ).flatten()
    truth = torch.cat([it["mask"][None] for it in items]).flatten() > 0.5
    pred = (prob >= 0.5).numpy()
    assert 0 < pred.sum() < pred.size and 0 < truth.sum() < truth.numel()
    assert result["f1"] == pytest.approx(f1_score(truth.numpy(), pred), abs=1e-9)
    assert result["iou"] == pytest.approx(jaccard_score(truth.numpy(), pred), abs=1e-9)
    assert result["auc"] == pytest.approx(roc_auc_score(truth.numpy(), prob.numpy()), abs=1e-6)
    assert result["pixels"] == 3 * 32 * 32


def test_resume_continues_exactly(tmp_path):
    straight, split = tmp_path / "a", tmp_path / "b"
    train_stage("scratch", "smoke", runs=straight, progress=False, overrides=["schedule.steps=3"])
    train_stage("scratch", "smoke", runs=split, progress=False, overrides=["schedule.steps=2"])
    train_stage("scratch", "smoke", runs=split, progress=False, overrides=["schedule.steps=3"], resume=True)
    a = load_checkpoint(straight / "scratch" / "last.pt")["models"]["detector"]
    b = load_checkpoint(split / "scratch" / "last.pt")["models"]["detector"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # BatchNorm running statistics included


def test_configs_and_refusals(tmp_path):
    assert "scratch" in STAGES.names()
    for name in ("smoke", "tiny", "paper"):
        cfg = resolve_config(name, "scratch")
        assert cfg["data"]["preset"] == "scratch" and cfg["loss"]["scratch"]["bce_or_focal"] == "focal"
        assert cfg["model"]["scratch"]["norm"] == "batch"
    paper = resolve_config("paper", "scratch")["model"]["scratch"]
    assert (paper["depth"], paper["base_channels"], paper["max_channels"]) == (4, 64, 1024)  # released
    with pytest.raises(ValueError, match="data.crop must be a multiple of 4"):
        train_stage("scratch", "smoke", runs=tmp_path, progress=False, overrides=["data.crop=30"])
    with pytest.raises(ValueError, match="test set"):
        train_stage("scratch", "tiny", runs=tmp_path, progress=False)  # embedded is for smoke runs only


def test_training_pairs_follow_the_recipes_data_settings(tmp_path):
    from oldphoto_bench.train.stages import StageContext

    cfg = resolve_config("smoke", "scratch", ["data.clean_fraction=1.0", "data.degrade_scope=photo"])
    stage = STAGES.get("scratch")(cfg, StageContext(runs=tmp_path, data="embedded", note=lambda _: None))  # builds
    ds = stage.streams["pairs"].dataset
    assert ds.clean_fraction == 1.0 and ds.degrade_scope == "photo"
    item = ds[0]  # every pair undamaged: nothing to detect
    assert item["record"]["undamaged"] and not item["mask"].any()
