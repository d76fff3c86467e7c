"""The command line as a person meets it: every --help answers without loading torch, the parsers' name lists
equal the registries they mirror, and the flags shared by several subcommands (--device, --face-backend,
--checkpoints, --no-progress) mean the same everywhere."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from oldphoto_bench.cli import SUBCOMMANDS, build_parser, choices, main

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "numpy", "scipy", "skimage", "cv2", "PIL", "matplotlib", "sklearn", "dlib")

HELP_WITHOUT_TORCH = """
import sys
from oldphoto_bench.cli import SUBCOMMANDS, main

for name in [None, *SUBCOMMANDS]:
    try:
        main(([name] if name else []) + ["--help"])
    except SystemExit as e:
        assert e.code == 0, (name, e.code)
    else:
        raise AssertionError(f"{name} --help did not exit")
print("loaded:", *sorted(m for m in sys.modules if m.split(".")[0] in set(sys.argv[1:])))
"""


def test_help_of_every_subcommand_loads_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH, *HEAVY], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: oldphoto-bench" in out.stdout
    for name in SUBCOMMANDS:
        assert f"usage: oldphoto-bench {name}" in out.stdout, name
    loaded = out.stdout.splitlines()[-1].split()
    assert loaded == ["loaded:"], f"--help imported {loaded[1:]}"


def test_help_check_sees_torch_when_it_is_imported():
    """The check above can fail: the same script reports torch when something imports it first."""
    script = "import torch\n" + HELP_WITHOUT_TORCH
    out = subprocess.run([sys.executable, "-c", script, "torch"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch" in out.stdout.splitlines()[-1].split()[1:]


def test_name_lists_equal_the_registries_they_mirror():
    from oldphoto_bench.bench import DEFAULT_METHODS
    from oldphoto_bench.degrade import preset_names
    from oldphoto_bench.faces.detect import BACKENDS
    from oldphoto_bench.pretrained.export import DEFAULT_MAX_MB
    from oldphoto_bench.pretrained.stages import RECIPE, STAGE_NAMES
    from oldphoto_bench.train import STAGES

    where = "the parsers' copy in oldphoto_bench/cli/choices.py"
    assert choices.FACE_BACKENDS == BACKENDS, f"update FACE_BACKENDS, {where}"
    assert list(choices.TRAIN_STAGES) == STAGES.names(), f"update TRAIN_STAGES, {where}"
    assert choices.SHIPPED_STAGES == STAGE_NAMES, f"update SHIPPED_STAGES, {where}"
    assert choices.SHIPPED_RECIPE == RECIPE and choices.SHIPPED_RECIPE in choices.train_recipes()
    assert choices.SHIP_MAX_MB == DEFAULT_MAX_MB
    assert choices.BENCH_METHODS == tuple(DEFAULT_METHODS)
    assert choices.preset_names() == preset_names()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_device_is_the_same_flag_everywhere():
    subs = _subparsers()
    with_device = {name for name, p in subs.items() if _option(p, "--device") is not None}
    assert with_device == set(SUBCOMMANDS) - {"faces", "weights"}
    for name in sorted(with_device):
        action = _option(subs[name], "--device")
        assert action.type is choices.device and action.default == "cpu" and action.choices is None, name
        assert choices.DEVICES in action.help, name
    parse = build_parser().parse_args
    assert parse(["restore", "x", "--out", "o", "--device", "cuda:1"]).device == "cuda:1"
    assert parse(["bench", "--device", "cuda"]).device == "cuda"


@pytest.mark.parametrize("name", ["degrade", "restore", "bench", "train", "latent-gap", "demo"])
def test_an_unknown_device_is_a_usage_error_naming_the_valid_ones(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--device", "tpu"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--device" in err and "'tpu'" in err and choices.DEVICES in err


def test_face_backend_is_one_flag_on_faces_and_restore():
    subs = _subparsers()
    faces, restore = _option(subs["faces"], "--face-backend"), _option(subs["restore"], "--face-backend")
    assert faces is _option(subs["faces"], "--backend")  # the older spelling still works on faces
    assert tuple(faces.choices) == tuple(restore.choices) == choices.FACE_BACKENDS
    assert faces.default == restore.default == "auto" and faces.dest == restore.dest == "face_backend"
    parse = build_parser().parse_args
    assert parse(["faces", "x", "--out", "o", "--backend", "cascade"]).face_backend == "cascade"
    assert parse(["faces", "x", "--out", "o", "--face-backend", "hybrid"]).face_backend == "hybrid"


def test_checkpoints_default_to_the_shipped_folder_everywhere():
    subs = _subparsers()
    for name in ("restore", "bench", "demo", "latent-gap"):
        action = _option(subs[name], "--checkpoints")
        assert action.default is None and not action.required, name
        assert "shipped" in action.help, name


def test_latent_gap_without_checkpoints_uses_the_shipped_ones_and_shows_progress(tmp_path, capsys):
    from PIL import Image

    from oldphoto_bench.restore import default_checkpoints

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 36), (60 * i, 90, 200 - 50 * i)).save(photos / f"p{i}.png")
    out = tmp_path / "gap"
    argv = ["latent-gap", "--real", str(photos), "--data", str(photos), "--out", str(out), "--size", "32",
            "--cells", "8", "--max-images", "3"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    settings = json.loads((out / "latent_gap.json").read_text())["settings"]
    assert settings["checkpoints"] == str(default_checkpoints())
    for bar in ("age X", "encode R", "encode X", "encode Y"):
        assert bar in captured.err, bar
    assert "R-X" in captured.out and (out / "latent_embedding.png").is_file()

    assert main([*argv, "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    assert "encode X" not in capsys.readouterr().err
