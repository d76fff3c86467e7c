"""Shared test setup: the repo root on sys.path (tests run without installing) and common fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the repo (small public image sets); skips the test when it is absent."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data not present")
    return path


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory) -> Path:
    """Smoke checkpoints of the restore stages (vae-a, vae-b, mapping, scratch), trained once per session
    with two steps each (a few seconds): enough to run `restore` end to end, not to restore well."""
    from oldphoto_bench.train import train_stage

    root = tmp_path_factory.mktemp("smoke_runs")
    for stage in ("vae-a", "vae-b", "mapping", "scratch"):
        train_stage(stage, "smoke", runs=root, data="embedded", progress=False, overrides=["schedule.steps=2"])
    return root
