"""oldphoto_bench.teaching: the notebooks' training guard, runs folders started from the shipped checkpoints,
the VAE_A shipped without the latent adversarial loss, and the domain-gap figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oldphoto_bench.pretrained import PRETRAINED_DIR
from oldphoto_bench.pretrained.export import sha256_file
from oldphoto_bench.teaching import (
    NO_LATENT_ADVERSARIAL_DIR,
    TRAINING_KINDS,
    plot_gap_comparison,
    start_runs,
    training_data,
)


@pytest.fixture
def shared(monkeypatch, tmp_path):
    root = tmp_path / "shared"
    for name in ("clean/bsds500", "clean/set14", "clean/kodak24", "old/bopbtl/old", "faces/ffhq10"):
        (root / name).mkdir(parents=True)
    monkeypatch.setenv("OLDPHOTO_SHARED_DATA", str(root))
    return root


def test_training_data_takes_the_shared_training_sets_only(shared):
    assert training_data("clean").split(",") == [str(shared / "clean/bsds500"), str(shared / "clean/set14")]
    assert training_data("real") == str(shared / "old/bopbtl/old")
    with pytest.raises(FileNotFoundError, match="no faces training data"):
        training_data("faces")  # only the test set faces/ffhq10 is there
    with pytest.raises(KeyError):
        training_data("kodak")


@pytest.mark.parametrize("spec", ["embedded", "clean/kodak24", "faces/ffhq10", "clean/set14,clean/kodak24"])
def test_training_data_refuses_test_sets(shared, spec):
    folder = ",".join(p if p == "embedded" else str(shared / p) for p in spec.split(","))
    with pytest.raises(ValueError, match="refusing to train on a test set"):
        training_data("clean", folder)


def test_training_data_refuses_a_copy_of_a_test_set_and_takes_a_user_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("OLDPHOTO_SHARED_DATA", str(tmp_path / "missing"))
    (tmp_path / "copy" / "kodak24").mkdir(parents=True)
    with pytest.raises(ValueError, match="test set"):
        training_data("clean", tmp_path / "copy")
    (tmp_path / "mine").mkdir()
    assert training_data("clean", tmp_path / "mine") == str(tmp_path / "mine")
    with pytest.raises(FileNotFoundError, match="not found"):
        training_data("clean", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="TRAIN_DATA"):
        training_data("clean")  # no shared data: the user must name a folder
    assert set(TRAINING_KINDS) == {"clean", "real", "faces"}


def test_start_runs_copies_the_shipped_stages(tmp_path):
    runs = start_runs(tmp_path / "runs", ["vae-b"])
    assert (runs / "vae-b" / "last.pt").read_bytes() == (PRETRAINED_DIR / "vae-b" / "last.pt").read_bytes()
    assert sorted(p.name for p in runs.iterdir()) == ["vae-b"]


def test_vae_a_without_latent_adversarial_matches_the_shipped_one_but_for_that_flag():
    prov = json.loads((NO_LATENT_ADVERSARIAL_DIR / "vae-a" / "provenance.json").read_text())
    shipped = json.loads((PRETRAINED_DIR / "vae-a" / "provenance.json").read_text())
    assert sha256_file(NO_LATENT_ADVERSARIAL_DIR / "vae-a" / "last.pt") == prov["sha256"]
    assert prov["config"]["model"]["latent_adversarial"] is False
    assert shipped["config"]["model"]["latent_adversarial"] is True
    assert prov["data"] == shipped["data"] and prov["seed"] == shipped["seed"] and prov["steps"] == shipped["steps"]
    for section in ("data", "optim", "loss", "schedule"):  # keys added to the recipe since (colour_*) aside
        assert {k: prov["config"][section][k] for k in shipped["config"][section]} == shipped["config"][section], section
    for key in ("vae", "vae_a_init", "latent_discriminator", "image_discriminator"):
        assert prov["config"]["model"][key] == shipped["config"]["model"][key], key


def test_plot_gap_comparison_draws_one_panel_per_encoder():
    import matplotlib

    matplotlib.use("Agg")
    from oldphoto_bench.latent_gap import latent_gap

    rng = np.random.default_rng(0)
    feats = {name: {k: rng.normal(shift, 1.0, size=(60, 4)) for k, shift in (("R", 0.0), ("X", 0.5), ("Y", 2.0))}
             for name in ("a", "b")}
    gaps = {name: latent_gap(f) for name, f in feats.items()}
    fig = plot_gap_comparison(feats, gaps, max_points=50)
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["a", "b"]
    fig = plot_gap_comparison({"a": {k: v for k, v in feats["a"].items() if k != "R"}}, {"a": gaps["a"]},
                              projection="lda")  # two domains: falls back to PCA
    assert "PCA" in fig._suptitle.get_text()
    with pytest.raises(KeyError):
        plot_gap_comparison(feats, gaps, projection="tsne")
