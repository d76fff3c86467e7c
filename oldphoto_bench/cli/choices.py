"""The names the command line's parsers offer, and the ``--device`` argument every subcommand shares.

This module imports nothing heavy (no torch, numpy or image libraries), so that ``oldphoto-bench --help``
and every ``oldphoto-bench COMMAND --help`` answer at once. The registries these lists mirror live in
modules that load torch; ``tests/test_cli_help.py`` checks that each list equals its registry:

    FACE_BACKENDS      oldphoto_bench.faces.detect.BACKENDS
    TRAIN_STAGES       oldphoto_bench.train.STAGES.names()
    SHIPPED_STAGES     oldphoto_bench.pretrained.stages.STAGE_NAMES
    SHIPPED_RECIPE     oldphoto_bench.pretrained.stages.RECIPE
    SHIP_MAX_MB        oldphoto_bench.pretrained.export.DEFAULT_MAX_MB
    BENCH_METHODS      oldphoto_bench.bench.DEFAULT_METHODS
"""

from __future__ import annotations

import argparse
import re

FACE_BACKENDS = ("auto", "hybrid", "dlib", "cascade")
FACE_BACKEND_HELP = ("face detector: auto, hybrid, dlib or cascade (default: auto = hybrid when dlib and its "
                     "models are installed, else dlib, else cascade)")
TRAIN_STAGES = ("baseline", "colour", "face", "mapping", "mapping-no-pn", "scratch", "torn", "vae-a", "vae-b")
SHIPPED_STAGES = ("vae-b", "vae-a", "colour", "mapping", "mapping-no-pn", "scratch", "torn", "face",
                  "baseline-pix2pix", "baseline-unet")
SHIPPED_RECIPE = "tiny"
SHIP_MAX_MB = 60.0
BENCH_METHODS = ("input", "nlm", "bilateral", "tv", "ours")

DEVICES = "cpu, cuda or cuda:N"
_DEVICE = re.compile(r"cpu|cuda(?::\d+)?")


def device(text: str) -> str:
    """argparse ``type`` of ``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (whether torch sees that GPU is
    checked when the command runs, by :func:`oldphoto_bench.cli.checks.check_device`)."""
    if _DEVICE.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use {DEVICES}")
    return text


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "torch device") -> None:
    """The same ``--device`` on every subcommand: ``cpu`` (default), ``cuda`` or ``cuda:N``."""
    parser.add_argument("--device", default="cpu", type=device, metavar="DEVICE",
                        help=f"{what}: {DEVICES} (default: cpu)")


def preset_names() -> list[str]:
    """The shipped degradation presets (YAML files in ``oldphoto_bench/configs/presets``)."""
    from ..config import shipped_configs

    return shipped_configs("presets")


def train_recipes() -> list[str]:
    """The shipped training recipes (YAML files in ``oldphoto_bench/configs/train``)."""
    from ..config import shipped_configs

    return shipped_configs("train")
