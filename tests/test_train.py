"""Training stages on CPU with the smoke recipe: files, refusals, exact resume, learning, the latent switch."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from oldphoto_bench.cli import main
from oldphoto_bench.data import PairsDataset, open_source
from oldphoto_bench.imageio import save_image
from oldphoto_bench.seeding import numpy_rng
from oldphoto_bench.train import (
    EpochOrder,
    Trainer,
    check_data_specs,
    checkpoint_path,
    learning_rate,
    load_checkpoint,
    load_mapping,
    load_stage_config,
    load_vae,
    resolve_config,
    save_checkpoint,
)
from oldphoto_bench.train.logs import RunLog

FAST = ["--set", "schedule.steps=2", "--no-progress"]


def _write_photos(folder: Path, sizes, seed: int) -> Path:
    """Small smooth 'photos' (random low-frequency colour fields), 8-bit PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        rng = numpy_rng(seed, i)
        coarse = torch.from_numpy(rng.random((1, 3, 4, 4)).astype(np.float32))
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        save_image(img, folder / f"p{i}.png")
    return folder


@pytest.fixture
def real_dir(tmp_path: Path) -> Path:
    return _write_photos(tmp_path / "real", [(40, 48), (36, 36), (64, 40)], seed=7)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_stages_end_to_end(tmp_path, real_dir, capsys):
    runs = tmp_path / "runs"
    for stage in ("vae-a", "vae-b", "mapping"):
        assert main(["train", stage, "--config", "smoke", "--out", str(runs), "--real", str(real_dir), *FAST]) == 0
        d = runs / stage
        for name in ("last.pt", "config.yaml", "manifest.json", "log.csv", "run.log"):
            assert (d / name).is_file(), f"{stage}: {name} missing"
        assert any((d / "tb").iterdir()), "no TensorBoard events"
        rows = _rows(d / "log.csv")
        assert [int(r["step"]) for r in rows] == [1, 2]
        assert all(np.isfinite(float(r["total"])) for r in rows)
        cfg = load_stage_config(runs, stage)
        assert cfg["run"]["stage"] == stage and cfg["run"]["real"] == str(real_dir)
        assert cfg["schedule"]["steps"] == 2
        manifest = yaml.safe_load((d / "manifest.json").read_text())
        assert manifest["seed"] == 0 and "VGG perceptual loss" in manifest["vgg_perceptual"]
        assert "VGG perceptual loss" in (d / "run.log").read_text()
    assert not list(runs.rglob("*.tmp")), "temporary checkpoint files left behind"
    err = capsys.readouterr().err
    assert "test set" in err  # the embedded photos are a test set: said so

    vae_a, vae_b, mapping = load_vae(runs, "vae-a"), load_vae(runs, "vae-b"), load_mapping(runs)
    assert not vae_a.training and not mapping.training
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = vae_a.encode(x)[0]
        y = vae_b.decode(mapping(z, torch.ones(1, 1, 8, 8, dtype=torch.bool)))
    assert z.shape == (1, 8, 8, 8) and y.shape == x.shape


def test_mapping_without_vae_checkpoints_names_the_missing_file(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "mapping", "--config", "smoke", "--out", str(runs), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(runs / "vae-a" / "last.pt") in err and "oldphoto-bench train vae-a" in err
    assert not (runs / "mapping" / "last.pt").exists()


def test_unknown_set_key_is_rejected_listing_valid_keys(tmp_path, capsys):
    code = main(["train", "vae-b", "--config", "smoke", "--out", str(tmp_path), "--set", "optim.lrr=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "optim.lrr" in err and "optim.lr" in err and "schedule.steps" in err
    assert not (tmp_path / "vae-b").exists()


def test_test_sets_are_refused_except_embedded_for_smoke(tmp_path, capsys):
    assert main(["train", "vae-b", "--config", "tiny", "--out", str(tmp_path)]) == 2
    assert "test set" in capsys.readouterr().err
    kodak = tmp_path / "clean" / "kodak24"
    _write_photos(kodak, [(32, 32)], seed=1)
    with pytest.raises(ValueError, match="kodak24"):
        check_data_specs("smoke", str(kodak), None)
    with pytest.raises(ValueError, match="--real"):
        check_data_specs("tiny", str(tmp_path / "mine"), "embedded")
    assert check_data_specs("smoke", "embedded", None)  # allowed, with a note


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    args = ["train", "vae-b", "--config", "smoke", "--out", str(tmp_path), *FAST]
    assert main(args) == 0
    ckpt = tmp_path / "vae-b" / "last.pt"
    before = ckpt.read_bytes()
    log_before = (tmp_path / "vae-b" / "log.csv").read_bytes()
    capsys.readouterr()
    assert main([*args, "--set", "seed=1"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err
    assert ckpt.read_bytes() == before and (tmp_path / "vae-b" / "log.csv").read_bytes() == log_before
    assert main([*args, "--set", "seed=1", "--overwrite"]) == 0
    assert ckpt.read_bytes() != before
    assert load_stage_config(tmp_path, "vae-b")["seed"] == 1


def test_resume_gives_the_same_next_loss(tmp_path, real_dir):
    """vae-a with R: two streams, three optimizers, latent discriminator, noise; fresh objects resume exactly."""
    cfg = resolve_config("smoke", "vae-a", ["schedule.steps=5"])
    kwargs = dict(data="embedded", real=str(real_dir), progress=False, tensorboard=False)
    first = Trainer("vae-a", cfg, tmp_path / "a", **kwargs)
    first.run(until=3)  # saves last.pt at step 3
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    expected = first.run(until=4)[0]  # step 4, continued in-process
    first.close()
    again = Trainer("vae-a", cfg, tmp_path / "b", resume=True, **kwargs)
    assert again.step == 3
    got = again.run(until=4)[0]
    again.close()
    assert got == expected  # exact float equality, every loss
    assert load_checkpoint(checkpoint_path(tmp_path / "b", "vae-a"))["step"] == 4


def test_cli_resume_of_a_stopped_run_matches_an_uninterrupted_one(tmp_path):
    """Stop after 2 of 3 steps, resume from the command line: the log equals an uninterrupted run's (a
    DataLoader worker process makes the batches, as in the tiny recipe)."""
    worker = ["--set", "data.num_workers=1"]
    straight = tmp_path / "straight"
    assert main(["train", "vae-b", "--config", "smoke", "--out", str(straight), "--set", "schedule.steps=3",
                 "--no-progress", *worker]) == 0
    stopped = tmp_path / "stopped"
    assert main(["train", "vae-b", "--config", "smoke", "--out", str(stopped), *FAST, *worker]) == 0
    assert main(["train", "vae-b", "--config", "smoke", "--out", str(stopped), "--set", "schedule.steps=3",
                 "--no-progress", "--resume", *worker]) == 0
    a, b = _rows(straight / "vae-b" / "log.csv"), _rows(stopped / "vae-b" / "log.csv")
    assert [r["step"] for r in b] == ["1", "2", "3"]
    losses = [k for k in a[0] if k not in ("seconds", "sec_per_step")]
    assert [[r[k] for k in losses] for r in a] == [[r[k] for k in losses] for r in b]
    assert "resumed" in (stopped / "vae-b" / "run.log").read_text()


def test_a_few_vae_b_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    """One 32x32 photo as the whole data set: 80 steps (about a second) cut its L1 error by 40 % or more."""
    photo = _write_photos(tmp_path / "one", [(32, 32)], seed=3) / "p0.png"
    cfg = resolve_config("smoke", "vae-b", ["schedule.steps=80", "optim.lr=1e-3", "data.batch_size=1"])
    trainer = Trainer("vae-b", cfg, tmp_path / "runs", data=str(photo), progress=False, tensorboard=False)
    x = PairsDataset(open_source(str(photo)), None, crop=32, train=False)[0]["clean"][None]

    def error() -> float:
        with torch.no_grad():
            return (trainer.stage.models["vae"](x, sample=False).recon - x).abs().mean().item()

    before = error()
    trainer.run()
    after = error()
    trainer.close()
    assert after < 0.6 * before, (before, after)


def _one_step(tmp_path: Path, real_dir: Path, switch: bool) -> dict:
    cfg = resolve_config("smoke", "vae-a", ["schedule.steps=1", f"model.latent_adversarial={str(switch).lower()}"])
    trainer = Trainer("vae-a", cfg, tmp_path / f"runs-{switch}", real=str(real_dir), progress=False,
                      tensorboard=False)
    losses = trainer.run()[0]
    trainer.close()
    return {"losses": losses, "ckpt": load_checkpoint(checkpoint_path(tmp_path / f"runs-{switch}", "vae-a"))}


def test_latent_adversarial_switch_changes_what_is_optimised(tmp_path, real_dir):
    on, off = _one_step(tmp_path, real_dir, True), _one_step(tmp_path, real_dir, False)
    assert "d_latent" in on["ckpt"]["models"] and "d_latent" not in off["ckpt"]["models"]
    assert "g_latent" in on["losses"] and "g_latent" not in off["losses"]
    vae_on, vae_off = on["ckpt"]["models"]["vae"], off["ckpt"]["models"]["vae"]
    # same seed, same data and noise: the latent term reaches the encoder only, so after one step the decoder
    # is bit-identical and the encoder is not
    dec = [k for k in vae_on if k.startswith("decoder.")]
    enc = [k for k in vae_on if k.startswith("encoder.")]
    assert dec and all(torch.equal(vae_on[k], vae_off[k]) for k in dec)
    assert any(not torch.equal(vae_on[k], vae_off[k]) for k in enc)


def test_vae_a_without_real_warns_and_trains_on_x_alone(tmp_path):
    cfg = resolve_config("smoke", "vae-a", ["schedule.steps=1"])
    trainer = Trainer("vae-a", cfg, tmp_path, progress=False, tensorboard=False)
    losses = trainer.run()[0]
    trainer.close()
    assert "g_latent" not in losses
    assert "no --real" in (tmp_path / "vae-a" / "run.log").read_text()
    assert "d_latent" not in load_checkpoint(checkpoint_path(tmp_path, "vae-a"))["models"]


def test_epoch_order_is_a_permutation_sharded_across_ranks():
    n, b = 10, 2
    single = EpochOrder(n, 2 * b, seed=3)
    ranks = [EpochOrder(n, b, seed=3, rank=r, world_size=2) for r in range(2)]
    assert single.steps_per_epoch == ranks[0].steps_per_epoch == 2  # 10 // 4, tail dropped
    for epoch in range(3):
        assert sorted(single.order(epoch).tolist()) == list(range(n))
        for step in range(2):
            shards = [r.batch(epoch, step) for r in ranks]
            assert not set(shards[0]) & set(shards[1])
            assert shards[0] + shards[1] == single.batch(epoch, step)  # same global batch for any world size
    assert single.order(0).tolist() != single.order(1).tolist()
    small = EpochOrder(3, 4, seed=0)  # fewer photos than a batch: permutations are appended
    assert small.steps_per_epoch == 1 and len(small.batch(0, 0)) == 4
    assert sorted(small.batch(0, 0)[:3]) == [0, 1, 2]


def test_recipes_resolve_stage_sections_and_lr_schedule():
    for name in ("smoke", "tiny", "paper"):
        for stage in ("vae-a", "vae-b", "mapping"):
            cfg = resolve_config(name, stage)
            # tiny's mapping is an L1-only regression with Adam's usual betas (see tiny.yaml)
            betas = [0.9, 0.999] if (name, stage) == ("tiny", "mapping") else [0.5, 0.999]
            assert cfg["optim"]["betas"] == betas and "stages" not in cfg
    paper = resolve_config("paper", "vae-a")
    assert paper["optim"]["lr"] == 2e-4 and paper["data"]["crop"] == 256
    # --set beats the stage section
    assert resolve_config("tiny", "mapping", ["schedule.steps=7"])["schedule"]["steps"] == 7
    with pytest.raises(KeyError, match="valid keys"):
        resolve_config({"seed": 0, "data": {}, "model": {}, "optim": {}, "loss": {}, "schedule": {},
                        "stages": {"vae-a": {"optim": {"nope": 1}}}}, "vae-a")
    cfg = {"optim": {"lr": 1.0}, "schedule": {"decay_from": 0.5}}
    # constant for the first half, then linear to zero: lr * (total - step) / (total - start)
    assert [learning_rate(cfg, s, 10) for s in (0, 4, 5, 8, 9)] == [1.0, 1.0, 1.0, 0.4, 0.2]


def test_artifacts_report_missing_and_mismatched_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="oldphoto-bench train vae-b"):
        load_vae(tmp_path, "vae-b")
    with pytest.raises(FileNotFoundError, match="oldphoto-bench train mapping"):
        load_mapping(tmp_path)
    assert main(["train", "vae-b", "--config", "smoke", "--out", str(tmp_path), *FAST]) == 0
    path = checkpoint_path(tmp_path, "vae-b")
    ckpt = load_checkpoint(path)
    ckpt["specs"]["vae"]["latent_channels"] = 16  # weights no longer fit the recorded architecture
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k != "format"})
    with pytest.raises(ValueError, match="do not match"):
        load_vae(tmp_path, "vae-b")


def test_tensorboard_missing_is_a_note_not_an_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    log = RunLog(tmp_path, tensorboard=True)
    log.row({"step": 1, "epoch": 0, "lr": 1.0, "seconds": 0.1, "sec_per_step": 0.1, "loss": 0.5})
    log.close()
    assert "TensorBoard logging off" in (tmp_path / "run.log").read_text()
    assert _rows(tmp_path / "log.csv")[0]["loss"] == "0.5"


def test_resume_accepts_model_keys_added_to_the_recipe_since_but_not_changed_ones(tmp_path):
    from oldphoto_bench.train import save_checkpoint, train_stage

    train_stage("scratch", "smoke", runs=tmp_path, progress=False, overrides=["schedule.steps=2"])
    path = tmp_path / "scratch" / "last.pt"
    ckpt = load_checkpoint(path)
    del ckpt["config"]["model"]["torn"]  # as written before the recipe had a torn-piece detector
    save_checkpoint(path, ckpt)
    train_stage("scratch", "smoke", runs=tmp_path, progress=False, overrides=["schedule.steps=3"], resume=True)
    assert load_checkpoint(path)["step"] == 3
    with pytest.raises(ValueError, match="model.scratch.base_channels: 8 -> 4"):
        train_stage("scratch", "smoke", runs=tmp_path, progress=False, resume=True,
                    overrides=["schedule.steps=4", "model.scratch.base_channels=4"])
