"""Shipped checkpoints (oldphoto_bench.pretrained, `oldphoto-bench ship`): export of smoke-trained runs to
inference-only checkpoints that every loader reads, provenance and its sha256, the size limit, test-set
refusal, the package default of restore, the error naming the retrain command, and the retrain itself."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import skimage.data
import tomllib
import torch
import torch.nn.functional as F

import oldphoto_bench
from oldphoto_bench import imageio
from oldphoto_bench import pretrained as pretrained_pkg
from oldphoto_bench.bench.methods import MethodContext
from oldphoto_bench.bench.methods.ours import load_no_pn_mapping
from oldphoto_bench.cli import main
from oldphoto_bench.pretrained import PRETRAINED_DIR, RETRAIN_COMMAND, is_shipped
from oldphoto_bench.pretrained.export import list_shipped, ship_runs
from oldphoto_bench.pretrained.retrain import plan_retrain, retrain
from oldphoto_bench.pretrained.stages import SHIPPED_STAGES, STAGE_NAMES
from oldphoto_bench.restore import MissingCheckpointsError, Restorer, default_checkpoints
from oldphoto_bench.restore import checkpoints as checkpoints_module
from oldphoto_bench.seeding import torch_generator
from oldphoto_bench.train import (
    checkpoint_path,
    load_checkpoint,
    load_face,
    load_mapping,
    load_scratch,
    load_vae,
)
from oldphoto_bench.train.baseline_stage import load_baseline

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "schedule.steps=1", "--set", "data.faces.aligned=true", "--no-progress"]
TRAINING_ONLY = ("optimizers", "scaler", "streams", "generators")


def _photos(folder: Path, n: int = 2, size: int = 96) -> Path:
    """``n`` small photos (scikit-image's astronaut, resized; mirrored copies) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    img = F.interpolate(imageio.to_tensor(skimage.data.astronaut()), size=(size, size), mode="bilinear",
                        align_corners=False, antialias=True)
    for i in range(n):
        imageio.save_image(img.flip(-1) if i % 2 else img, folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One smoke step of every shipped stage, trained through the CLI on a folder of two photos."""
    root = tmp_path_factory.mktemp("pretrained")
    photos = _photos(root / "photos")
    out = root / "runs"
    for row in SHIPPED_STAGES:
        real = ["--real", str(photos)] if row.real else []
        assert main(["train", *row.train, "--config", "smoke", "--data", str(photos), *real, "--out", str(out),
                     *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def shipped(runs, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("shipped") / "tiny"
    ship_runs(runs, dest, log=lambda line: None)
    return dest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_keeps_only_inference_networks_bit_for_bit(runs, shipped):
    for row in SHIPPED_STAGES:
        src, dst = runs / row.run / "last.pt", shipped / row.run / "last.pt"
        assert dst.stat().st_size < src.stat().st_size, row.run
        full, small = load_checkpoint(src), load_checkpoint(dst)
        assert not set(TRAINING_ONLY) & set(small), row.run
        assert set(small["models"]) == set(small["specs"]) == set(row.keep)
        assert small["stage"] == full["stage"] and small["config"] == full["config"]
        assert small["step"] == full["step"] == 1
        for name in row.keep:
            assert small["specs"][name] == full["specs"][name]
            assert small["models"][name].keys() == full["models"][name].keys()
            for k, v in small["models"][name].items():
                assert torch.equal(v, full["models"][name][k]), (row.run, name, k)
                assert v.dtype == full["models"][name][k].dtype
                if v.is_floating_point():
                    assert v.dtype == torch.float32
    assert sorted(p.name for p in shipped.iterdir()) == sorted(STAGE_NAMES)
    assert {p.name for p in (shipped / "vae-a").iterdir()} == {"last.pt", "provenance.json"}


def test_loaders_and_restorer_read_the_shipped_folder(runs, shipped):
    for stage in ("vae-a", "vae-b"):
        assert load_vae(shipped, stage).latent_channels == load_vae(runs, stage).latent_channels
    assert load_mapping(shipped).has_nonlocal
    assert load_scratch(shipped).stem[1].in_channels == 1
    assert load_face(shipped).size == 32
    for name in ("pix2pix", "unet"):
        load_baseline(shipped, name)
    assert not load_no_pn_mapping(MethodContext(checkpoints=shipped)).has_nonlocal

    x = torch.rand(1, 3, 40, 52, generator=torch_generator(0))
    a = Restorer(runs, with_scratch=True, faces=False).restore(x)
    b = Restorer(shipped, with_scratch=True, faces=False).restore(x)
    assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask)


def test_provenance_records_the_run_and_the_file(runs, shipped):
    photos = str(runs.parent / "photos")
    for row in SHIPPED_STAGES:
        prov = json.loads((shipped / row.run / "provenance.json").read_text())
        manifest = json.loads((runs / row.run / "manifest.json").read_text())
        ckpt = load_checkpoint(runs / row.run / "last.pt")
        path = shipped / row.run / "last.pt"
        assert prov["stage"] == row.run and prov["train_stage"] == list(row.train)
        assert prov["sha256"] == _sha256(path) and prov["bytes"] == path.stat().st_size
        assert prov["source"]["sha256"] == _sha256(runs / row.run / "last.pt")
        assert prov["data"]["data"]["sources"] == [{"path": photos, "shared_set": None, "files": 2}]
        assert (prov["data"]["real"] is not None) == bool(row.real)
        assert prov["config"] == ckpt["config"] and prov["seed"] == ckpt["config"]["seed"] == 0
        # the recorded command, with the training machine's runs folder written as RUNS
        assert prov["command"] == manifest["command"].replace(f"--out {runs}", "--out RUNS")
        assert "--out RUNS" in prov["command"] and str(runs) not in prov["command"]
        assert prov["command_source"].startswith("manifest.json")
        assert prov["source"]["checkpoint"] == f"RUNS/{row.run}/last.pt"
        assert prov["command"].startswith(f"oldphoto-bench train {' '.join(row.train)} --config smoke")
        assert prov["steps"] == 1 and prov["total_steps"] == 1
        assert prov["training_seconds"] == pytest.approx(ckpt["elapsed"], abs=1e-3)
        assert prov["log_csv_seconds"] == pytest.approx(ckpt["elapsed"], abs=2e-3)
        assert prov["git_revision"] == manifest["git_revision"] and prov["versions"] == manifest["versions"]
        assert set(prov["networks"]) == set(row.keep) and all(n["parameters"] > 0 for n in prov["networks"].values())
    assert json.loads((shipped / "scratch" / "provenance.json").read_text())["eval"] is not None


def test_list_checks_the_sha256(shipped, tmp_path, capsys):
    entries = list_shipped(shipped)
    assert [e["stage"] for e in entries] == sorted(STAGE_NAMES) and all(e["sha256_ok"] for e in entries)
    assert main(["ship", "--list", "--dest", str(shipped)]) == 0
    out = capsys.readouterr().out
    for name in STAGE_NAMES:
        assert name in out
    copy = tmp_path / "copy"
    shutil.copytree(shipped, copy)
    with open(copy / "vae-b" / "last.pt", "ab") as f:
        f.write(b"x")
    assert {e["stage"]: e["sha256_ok"] for e in list_shipped(copy)}["vae-b"] is False
    assert main(["ship", "--list", "--dest", str(copy)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert main(["ship", "--list", "--dest", str(tmp_path / "none")]) == 0
    assert RETRAIN_COMMAND in capsys.readouterr().out


def test_size_limit_writes_nothing(runs, tmp_path, capsys):
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="over --max-mb 0.01 MB.*nothing was written"):
        ship_runs(runs, dest, max_mb=0.01, log=lambda line: None)
    assert not dest.exists()
    assert main(["ship", str(runs), "--dest", str(dest), "--stages", "vae-b", "--max-mb", "0.01"]) == 2
    assert "--max-mb" in capsys.readouterr().err and not dest.exists()
    # the stages already shipped and not replaced count too
    assert main(["ship", str(runs), "--dest", str(dest), "--stages", "scratch"]) == 0
    held = sum(p.stat().st_size for p in (dest / "scratch").iterdir())
    with pytest.raises(ValueError, match="kept there: scratch"):
        ship_runs(runs, dest, stages="vae-b", max_mb=held / 1e6 + 0.001, log=lambda line: None)
    assert not (dest / "vae-b").exists()


def test_test_set_training_data_is_refused(runs, tmp_path):
    embedded = tmp_path / "embedded_runs"
    assert main(["train", "vae-b", "--config", "smoke", "--out", str(embedded), *FAST]) == 0  # --data embedded
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="--data embedded.*test set 'embedded'"):
        ship_runs(embedded, dest, log=lambda line: None)
    faces = tmp_path / "faces_runs"
    shutil.copytree(runs / "face", faces / "face")
    ckpt = load_checkpoint(faces / "face" / "last.pt")
    ckpt["config"]["run"]["data"] = "elsewhere/faces/ffhq10"
    torch.save(ckpt, faces / "face" / "last.pt")
    with pytest.raises(ValueError, match="test set 'faces/ffhq10'"):
        ship_runs(faces, dest, log=lambda line: None)
    assert not dest.exists()


def test_wrong_stage_and_missing_run_are_named(runs, tmp_path):
    swapped = tmp_path / "swapped"
    shutil.copytree(runs / "baseline-unet", swapped / "baseline-pix2pix")
    with pytest.raises(ValueError, match="holds stage 'baseline unet', not 'baseline pix2pix'"):
        ship_runs(swapped, tmp_path / "dest", log=lambda line: None)
    with pytest.raises(FileNotFoundError, match="vae-a/last.pt not found"):
        ship_runs(tmp_path / "empty", tmp_path / "dest", stages="vae-a", log=lambda line: None)
    with pytest.raises(KeyError, match="valid names: vae-b, vae-a"):
        ship_runs(runs, tmp_path / "dest", stages="vae-c", log=lambda line: None)
    assert main(["ship"]) == 2 and main(["ship", str(runs), "--force"]) == 2


def test_replacing_a_vae_notes_the_mapping_trained_on_it(runs, shipped, tmp_path):
    dest = tmp_path / "dest"
    shutil.copytree(shipped, dest)
    lines: list[str] = []
    ship_runs(runs, dest, stages="vae-a", log=lines.append)
    assert any("mapping" in line and "vae-a" in line for line in lines if line.startswith("note:"))


def test_default_checkpoints_is_the_package_folder():
    assert PRETRAINED_DIR == Path(oldphoto_bench.__file__).resolve().parent / "pretrained" / "tiny"
    assert default_checkpoints() == PRETRAINED_DIR and is_shipped(default_checkpoints())
    # pyproject ships <stage>/last.pt and provenance.json of that folder as package data
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["oldphoto_bench"]
    for name in ("last.pt", "provenance.json"):
        rel = f"pretrained/tiny/vae-a/{name}"
        assert any(fnmatch(rel, g) for g in globs), (rel, globs)


def test_shipped_files_match_their_provenance():
    """The package's own shipped folder: every file intact and trained on no test set."""
    entries = list_shipped(PRETRAINED_DIR)
    if not entries:
        pytest.skip(f"nothing shipped yet in {PRETRAINED_DIR} ({RETRAIN_COMMAND})")
    for e in entries:
        assert e["sha256_ok"], e["stage"]
        assert e["stage"] in STAGE_NAMES and e["config"]["run"]["data"] != "embedded"


def test_missing_shipped_files_name_the_retrain_command(monkeypatch, tmp_path, capsys):
    empty = (tmp_path / "tiny").resolve()
    monkeypatch.setattr(pretrained_pkg, "PRETRAINED_DIR", empty)
    monkeypatch.setattr(checkpoints_module, "DEFAULT_CHECKPOINTS", empty)
    with pytest.raises(MissingCheckpointsError) as info:
        Restorer()
    msg = str(info.value)
    for stage in ("vae-a", "vae-b", "mapping"):
        assert f"{stage}/last.pt" in msg
    assert RETRAIN_COMMAND in msg and "--checkpoints" in msg and "scratch" not in msg
    assert all(cmd == RETRAIN_COMMAND for _, _, cmd in info.value.missing)
    photo = tmp_path / "in.png"
    imageio.save_image(torch.rand(1, 3, 16, 16, generator=torch_generator(2)), photo)
    assert main(["restore", str(photo), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert RETRAIN_COMMAND in capsys.readouterr().err


def test_restore_without_checkpoints_uses_the_shipped_folder(monkeypatch, shipped, tmp_path):
    monkeypatch.setattr(pretrained_pkg, "PRETRAINED_DIR", shipped.resolve())
    monkeypatch.setattr(checkpoints_module, "DEFAULT_CHECKPOINTS", shipped.resolve())
    assert Restorer(faces=False).runs == shipped.resolve()
    photo = tmp_path / "in.png"
    imageio.save_image(torch.rand(1, 3, 24, 20, generator=torch_generator(1)), photo)
    out = tmp_path / "out"
    assert main(["restore", str(photo), "--out", str(out), "--no-faces", "--no-progress"]) == 0
    assert (out / "final" / "in.png").is_file()
    assert json.loads((out / "manifest.json").read_text())["config"]["checkpoints"] == str(shipped.resolve())


def test_retrain_dry_run_prints_every_command_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # data paths are printed relative to the working directory
    assert main(["ship", "--retrain", "runs", "--data-root", str(tmp_path / "data"), "--dry-run",
                 "--dest", "dest"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(SHIPPED_STAGES) + 1
    clean = "data/clean/bsds500,data/clean/cbsd68,data/clean/mcmaster,data/clean/set14"
    expected = [
        f"train vae-b --config tiny --out runs --data {clean}",
        f"train vae-a --config tiny --out runs --data {clean} --real data/old/bopbtl/old,data/old/bopbtl/old_w_scratch",
        f"train colour --config tiny --out runs --data {clean}",
        f"train mapping --config tiny --out runs --data {clean}",
        f"train mapping-no-pn --config tiny --out runs --data {clean}",
        f"train scratch --config tiny --out runs --data {clean}",
        "train torn --config tiny --out runs --data data/clean/bsds500,data/clean/cbsd68,data/clean/set14,"
        "data/faces/deepface",
        "train face --config tiny --out runs --data data/faces/deepface",
        f"train baseline pix2pix --config tiny --out runs --data {clean} --set schedule.steps=8000",
        f"train baseline unet --config tiny --out runs --data {clean}",
    ]
    for i, (line, cmd) in enumerate(zip(lines, expected, strict=False)):
        assert line == f"[{i + 1}/{len(SHIPPED_STAGES)}] {SHIPPED_STAGES[i].run}: oldphoto-bench {cmd} --device cpu"
    assert lines[-1].startswith("[ship] oldphoto-bench ship runs --dest dest --stages vae-b,vae-a,colour,mapping,")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "dest").exists()


def test_retrain_smoke_trains_ships_then_skips_and_resumes(tmp_path):
    root = tmp_path / "data"
    for row in SHIPPED_STAGES:
        for name in (*row.data, *row.real):
            if not (root / name).is_dir():
                _photos(root / name, n=2, size=64)
    runs, dest = tmp_path / "runs", tmp_path / "dest"
    lines: list[str] = []
    kw = dict(dest=dest, config="smoke", overrides=["schedule.steps=1", "data.faces.aligned=true"], progress=False,
              log=lines.append)
    plan = retrain(runs, root, **kw)
    assert [p.action for p in plan] == ["train"] * len(SHIPPED_STAGES)
    assert [e["stage"] for e in list_shipped(dest)] == sorted(STAGE_NAMES)
    for p in plan:  # the printed command is the one the run recorded (less --no-progress)
        recorded = json.loads((dest / p.row.run / "provenance.json").read_text())["command"]
        printed = " ".join(["oldphoto-bench", *(a for a in p.argv if a != "--no-progress")])
        assert recorded == printed.replace(f"--out {runs}", "--out RUNS")
        assert p.command in "\n".join(lines)

    again = retrain(runs, root, stages="vae-b,mapping", **kw)
    assert [p.action for p in again] == ["skip", "skip"] and "Note" not in again[0].why
    assert "not with --config tiny" in plan_retrain(runs, root, "vae-b")[0].why  # trained with smoke
    manifest = runs / "vae-b" / "manifest.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "total_steps": 3}))  # as if interrupted after step 1 of 3
    assert [p.action for p in plan_retrain(runs, root, "vae-b,mapping")] == ["resume", "skip"]
    forced = plan_retrain(runs, root, "vae-b", force=True)
    assert forced[0].action == "overwrite" and forced[0].argv[-1] == "--overwrite"
    assert checkpoint_path(runs, "vae-b").is_file()


def test_sha256_file_matches_the_published_test_vector(tmp_path):
    # FIPS 180-2 test vector for "abc"; chunk=1 reads it byte by byte
    from oldphoto_bench.provenance import sha256_file

    f = tmp_path / "abc.bin"
    f.write_bytes(b"abc")
    expect = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(f) == expect and sha256_file(f, chunk=1) == expect


def test_export_keeps_a_mappings_fine_tuned_decoder_and_restore_decodes_with_it(runs, tmp_path):
    """model.mapping_decoder finetune: the mapping's ``decoder`` network ships with it (an optional network)."""
    from oldphoto_bench.train.artifacts import load_output_vae

    copy = tmp_path / "runs"
    for stage in ("vae-a", "vae-b", "colour", "scratch", "face"):
        shutil.copytree(runs / stage, copy / stage)
    photos = _photos(tmp_path / "photos")
    assert main(["train", "mapping", "--config", "smoke", "--data", str(photos), "--out", str(copy), *FAST,
                 "--set", "model.mapping_decoder=finetune"]) == 0
    dest = tmp_path / "dest"
    ship_runs(copy, dest, stages=["mapping"], log=lambda line: None)
    small = load_checkpoint(dest / "mapping" / "last.pt")
    assert set(small["models"]) == {"mapping", "decoder"}
    assert set(json.loads((dest / "mapping" / "provenance.json").read_text())["networks"]) == {"mapping", "decoder"}
    for stage in ("vae-a", "vae-b"):
        shutil.copytree(copy / stage, dest / stage)
    tuned = load_output_vae(dest)
    for k, v in tuned.state_dict().items():
        assert torch.equal(v, small["models"]["decoder"][k]), k


def test_retrain_order_puts_the_longest_remaining_chain_first():
    from oldphoto_bench.pretrained.parallel import critical_path

    needs = {"vae-a": ("vae-b",), "mapping": ("vae-a", "vae-b")}
    cost = {"vae-b": 20.0, "vae-a": 6.0, "mapping": 30.0, "baseline-unet": 60.0}
    assert critical_path(list(cost), needs, cost) == {"vae-b": 56.0, "vae-a": 36.0, "mapping": 30.0,
                                                      "baseline-unet": 60.0}


_FAKE_STAGE = ("import sys, time, pathlib; name, sleep, rc, log = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), "
               "pathlib.Path(sys.argv[4]); f = log.open('a'); f.write(f'start {name} {time.monotonic()}\\n'); "
               "f.flush(); time.sleep(sleep); f.write(f'end {name} {time.monotonic()}\\n'); sys.exit(rc)")


def _events(log: Path) -> dict[str, tuple[float, float]]:
    seen: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        _, name, t = line.split()
        seen.setdefault(name, []).append(float(t))
    return {n: (ts[0], ts[1]) for n, ts in seen.items()}


def test_parallel_retrain_runs_jobs_at_once_after_their_needs(tmp_path):
    from oldphoto_bench.pretrained.parallel import run_parallel

    log = tmp_path / "events.txt"
    stages = [("a", ["a", "0.6", "0", str(log)], ()), ("b", ["b", "0.1", "0", str(log)], ("a",)),
              ("c", ["c", "0.3", "0", str(log)], ()), ("d", ["d", "0.1", "0", str(log)], ("b", "c"))]
    lines: list[str] = []
    run_parallel(stages, tmp_path / "runs", 2, tmp_path, log=lines.append, poll=0.02,
                 launcher=(sys.executable, "-c", _FAKE_STAGE))
    ev = _events(log)
    assert set(ev) == {"a", "b", "c", "d"}
    assert ev["b"][0] >= ev["a"][1] and ev["d"][0] >= max(ev["b"][1], ev["c"][1])  # needs first
    assert ev["c"][0] < ev["a"][1]  # a and c ran at the same time
    for t in (s for s, _ in ev.values()):  # never more than 2 at once
        assert sum(s <= t < e for s, e in ev.values()) <= 2
    assert sum(line.split()[1] == "done" for line in lines) == 4
    assert (tmp_path / "runs" / "retrain-logs" / "d.log").is_file()


def test_parallel_retrain_stops_starting_after_a_failure(tmp_path):
    from oldphoto_bench.pretrained.parallel import run_parallel

    log = tmp_path / "events.txt"
    stages = [("a", ["a", "0.0", "3", str(log)], ()), ("b", ["b", "0.0", "0", str(log)], ("a",)),
              ("c", ["c", "0.3", "0", str(log)], ())]
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="failed: a"):
        run_parallel(stages, tmp_path / "runs", 2, tmp_path, log=lines.append, poll=0.02,
                     launcher=(sys.executable, "-c", _FAKE_STAGE))
    ev = _events(log)
    assert "b" not in ev and "c" in ev and ev["c"][1] > 0  # the running stage finished, its dependant never started
    assert any("FAILED a" in line and "exit code 3" in line for line in lines)
    with pytest.raises(ValueError, match="jobs"):
        run_parallel(stages, tmp_path / "runs", 0, tmp_path)


def test_retrain_with_two_jobs_trains_and_ships(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the train processes read the data paths relative to it, as printed
    root = tmp_path / "data"
    for name in SHIPPED_STAGES[1].data + SHIPPED_STAGES[1].real:
        _photos(root / name, n=2, size=64)
    lines: list[str] = []
    plan = retrain(tmp_path / "runs", root, stages="vae-b,vae-a,colour", dest=tmp_path / "dest", config="smoke",
                   overrides=["schedule.steps=1"], progress=False, log=lines.append, jobs=2)
    assert [p.action for p in plan] == ["train"] * 3
    assert [e["stage"] for e in list_shipped(tmp_path / "dest")] == ["colour", "vae-a", "vae-b"]
    starts = [line.split()[2].rstrip(":") for line in lines if line.split()[1] == "start"]
    assert starts.index("vae-a") > starts.index("vae-b") and len(starts) == 3
    assert (tmp_path / "runs" / "retrain-logs" / "vae-a.log").is_file()
