"""Packaging contracts: environment.yml mirrors pyproject.toml; ruff is clean; the CLI answers --help."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_reqs = {r.replace(" ", "") for r in pip if not r.startswith("-e")}
    missing = {r.replace(" ", "") for r in reqs} - conda_reqs
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    extra = {_name(r) for r in conda_reqs} - {_name(r) for r in reqs}
    assert not extra, f"environment.yml has packages pyproject.toml does not: {sorted(extra)}"


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed (pip install -e '.[dev]')")
def test_ruff_clean():
    out = subprocess.run(["ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cli_help_for_every_subcommand():
    from oldphoto_bench.cli import SUBCOMMANDS

    for name in [None, *SUBCOMMANDS]:
        cmd = [sys.executable, "-m", "oldphoto_bench.cli"] + ([name] if name else []) + ["--help"]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "usage:" in out.stdout
