"""The benchmark harness on tiny suites: files and columns, numbers against scikit-image, the cache (a rerun
calls no method; an interrupted run resumes; changed settings recompute), unknown names, unavailable methods
and metrics, real suites, infinite PSNR, the classical methods and the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_tv_chambolle

from oldphoto_bench.bench import Method, MethodContext, MethodInput, build_method, run_benchmark
from oldphoto_bench.bench.methods.classical import inpaint_telea
from oldphoto_bench.bench.suites import image_seed, parse_suite, prepare_suite
from oldphoto_bench.cli import main
from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.imageio import load_image, load_mask, save_image, to_numpy
from oldphoto_bench.metrics import FID, KID, aggregate, build_metric
from oldphoto_bench.seeding import numpy_rng

METRICS = ("psnr", "ssim", "tv")


def _photo(h: int, w: int, seed: int) -> torch.Tensor:
    """A smooth colour field with texture: (1, 3, h, w) in [0, 1]."""
    rng = numpy_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 4, 4)).astype(np.float32))
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (img + 0.05 * torch.from_numpy(rng.standard_normal((1, 3, h, w)).astype(np.float32))).clamp(0, 1)


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    for i, (h, w) in enumerate([(40, 56), (48, 48), (72, 36)]):
        save_image(_photo(h, w, i), folder / f"p{i}.png")
    return folder


def colour_stats(images: torch.Tensor) -> torch.Tensor:
    """A cheap injected feature extractor for FID/KID: per-channel mean and standard deviation, (n, 6)."""
    return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], dim=1)


class Counting(Method):
    """Halves the distance to mid-gray; counts its calls."""

    name: ClassVar[str] = "counting"
    kind: ClassVar[str] = "classical"
    description: ClassVar[str] = "test method"

    def __init__(self, strength: float = 0.5):
        super().__init__(MethodContext())
        self.calls = 0
        self.settings = {"strength": strength}

    def restore(self, item: MethodInput) -> torch.Tensor:
        self.calls += 1
        return item.image + self.settings["strength"] * (0.5 - item.image)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _bench(photos: Path, out: Path, methods, **kw):
    metrics = kw.pop("metrics", list(METRICS))
    return run_benchmark(f"clean:{photos}", methods, out, metrics=metrics, progress=False, log=lambda s: None, **kw)


def test_tiny_suite_writes_every_file_with_the_stated_columns(photos, tmp_path):
    out = tmp_path / "out"
    sets = [FID(colour_stats, feature_name="colour stats"), KID(colour_stats, subsets=5, feature_name="colour stats")]
    _bench(photos, out, ["input", "tv"], metrics=[*METRICS, *sets])
    for sub in ("clean", "degraded", "mask"):
        assert sorted(p.name for p in (out / "data" / sub).iterdir()) == ["p0.png", "p1.png", "p2.png"]
    for name in ("per_image.csv", "summary.csv", "summary.md", "summary.json", "manifest.json"):
        assert (out / name).is_file(), name
    for fig in ("bar_psnr.png", "bar_ssim.png", "bar_fid.png", "bar_kid.png", "severity.png", "grid.png"):
        assert (out / "figures" / fig).is_file(), fig

    long = _read_csv(out / "per_image.csv")
    assert list(long[0]) == ["method", "image", "metric", "value"]
    assert len(long) == 2 * 3 * len(METRICS)  # per-set metrics are not per image
    summary = _read_csv(out / "summary.csv")
    assert list(summary[0]) == ["method", "n", "psnr", "ssim", "fid", "kid", "tv", "note"]
    assert [r["method"] for r in summary] == ["input", "tv"] and all(r["n"] == "3" for r in summary)

    # input's PSNR is the PSNR of the cached degraded PNG against the cached clean PNG (scikit-image)
    ref = {}
    for p in sorted((out / "data" / "clean").iterdir()):
        clean = to_numpy(load_image(p)[0]).astype(np.float64)
        noisy = to_numpy(load_image(out / "data" / "degraded" / p.name)[0]).astype(np.float64)
        ref[p.stem] = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    got = {r["image"]: float(r["value"]) for r in long if r["method"] == "input" and r["metric"] == "psnr"}
    assert got == pytest.approx(ref, rel=1e-9)
    assert float(summary[0]["psnr"]) == pytest.approx(np.mean(list(ref.values())), rel=1e-9)

    # the set metrics equal the metric called directly on the two sets of PNGs
    preds = [load_image(out / "cache" / "tv" / f"p{i}.png")[0] for i in range(3)]
    cleans = [load_image(out / "data" / "clean" / f"p{i}.png")[0] for i in range(3)]
    fid = FID(colour_stats).score_features(np.concatenate([colour_stats(x).numpy() for x in preds]),
                                           np.concatenate([colour_stats(x).numpy() for x in cleans]))
    assert float(summary[1]["fid"]) == pytest.approx(fid.value, rel=1e-6)

    md = (out / "summary.md").read_text()
    assert "psnr ↑" in md and "tv ↓" in md and "**" in md and "KID" in md and "± " in md
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"versions", "git_revision", "seed", "metrics", "methods", "suite"} <= set(manifest)
    assert manifest["metrics"]["ssim"]["settings"]["sigma"] == 1.5
    assert manifest["methods"]["tv"]["settings"]["weight"] == 0.1
    assert "max(H, W) <= 512" in manifest["suite"]["resize"]


def test_rerun_reuses_the_cache_and_an_interrupted_run_resumes(photos, tmp_path):
    out = tmp_path / "out"
    m = Counting()
    first = _bench(photos, out, [m])
    assert m.calls == 3 and first.runs[0].calls == 3
    summary = (out / "summary.csv").read_bytes()
    again = _bench(photos, out, [m])
    assert m.calls == 3 and again.runs[0].calls == 0  # nothing restored again
    assert (out / "summary.csv").read_bytes() == summary
    (out / "cache" / "counting" / "p1.png").unlink()  # as if the run had stopped before p1
    _bench(photos, out, [m])
    assert m.calls == 4 and (out / "summary.csv").read_bytes() == summary
    _bench(photos, out, [Counting(strength=0.25)])  # other settings: the cached outputs are stale
    assert (out / "summary.csv").read_bytes() != summary


def test_suite_is_replayable_and_refuses_other_settings(photos, tmp_path):
    suite = prepare_suite(f"clean:{photos}", tmp_path, preset="paper", seed=3, max_side=48, progress=False)
    info = json.loads((tmp_path / "data" / "suite.json").read_text())
    for item, entry in zip(suite.items, info["items"], strict=True):
        clean = load_image(item.clean)[0]
        assert max(clean.shape[-2:]) <= 48
        assert entry["seed"] == image_seed(3, item.name)
        again = Synthesizer.replay(clean, entry["record"])
        saved = load_image(item.degraded)[0]
        assert torch.allclose(again.image, saved, atol=0.5 / 255 + 1e-6)
        assert torch.equal(again.mask, load_mask(item.mask))
    with pytest.raises(ValueError, match="other settings"):
        prepare_suite(f"clean:{photos}", tmp_path, preset="paper", seed=4, max_side=48, progress=False)


def test_unknown_names_list_the_valid_ones(photos, tmp_path):
    with pytest.raises(KeyError, match="nlm.*tv"):
        _bench(photos, tmp_path / "a", ["input", "no-such-method"])
    for bad in ("nosuch", "nosuch:x", "clean", "embedded:x"):
        with pytest.raises(KeyError, match="clean:DIR"):
            parse_suite(bad)
    with pytest.raises(KeyError, match="psnr"):
        _bench(photos, tmp_path / "b", ["input"], metrics=["no-such-metric"])


def test_missing_checkpoints_give_an_empty_row_with_the_reason(photos, tmp_path):
    empty = tmp_path / "no_runs"
    _bench(photos, tmp_path / "out", ["input", "ours", "pix2pix", "ours-no-pn"], checkpoints=empty)
    rows = {r["method"]: r for r in _read_csv(tmp_path / "out" / "summary.csv")}
    assert rows["input"]["n"] == "3" and rows["input"]["note"] == ""
    for name, needle in (("ours", "vae-a"), ("pix2pix", "baseline-pix2pix"), ("ours-no-pn", "mapping-no-pn")):
        assert rows[name]["n"] == "0" and all(rows[name][m] == "" for m in METRICS)
        assert needle in rows[name]["note"] and "oldphoto-bench train" in rows[name]["note"]
        assert f"method `{name}` unavailable" in (tmp_path / "out" / "summary.md").read_text()


def test_unavailable_metric_is_listed_with_its_reason(photos, tmp_path):
    _bench(photos, tmp_path, ["input"], metrics=["psnr", "lpips"], weights_dir=tmp_path / "no_weights")
    row = _read_csv(tmp_path / "summary.csv")[0]
    assert row["lpips"] == "" and row["psnr"] != ""
    assert "metric `lpips` unavailable" in (tmp_path / "summary.md").read_text()


def test_real_suite_scores_without_references(photos, tmp_path):
    result = run_benchmark(f"real:{photos}", ["input", "tv"], tmp_path, progress=False, log=lambda s: None,
                           metrics=["psnr", "tv", "colourfulness"])
    assert [m.name for m in result.metrics] == ["tv", "colourfulness"]
    assert "references" in result.unavailable_metrics["psnr"]
    assert not (tmp_path / "data" / "clean").exists() and (tmp_path / "figures" / "grid.png").is_file()
    rows = _read_csv(tmp_path / "summary.csv")
    assert rows[0]["psnr"] == "" and rows[0]["tv"] != ""


def test_identical_restoration_reports_infinite_psnr(photos, tmp_path):
    nothing = tmp_path / "nothing.yaml"
    nothing.write_text("name: nothing\nstages: []\n")  # degraded == clean
    _bench(photos, tmp_path / "out", ["input"], preset=str(nothing))
    long = _read_csv(tmp_path / "out" / "per_image.csv")
    assert {r["value"] for r in long if r["metric"] == "psnr"} == {"inf"}
    assert _read_csv(tmp_path / "out" / "summary.csv")[0]["psnr"] == ""  # no finite value to average
    assert "+inf x3" in (tmp_path / "out" / "summary.md").read_text()


def test_classical_methods_against_scikit_image_and_inpainting_touches_only_the_mask():
    image = _photo(40, 44, 7)
    mask = torch.zeros(1, 1, 40, 44)
    mask[..., 10:14, :] = 1.0
    item = MethodInput(image, "x", 0, mask)
    tv = build_method("tv", MethodContext(has_masks=True)).restore(item)
    ref = denoise_tv_chambolle(to_numpy(image).astype(np.float64), weight=0.1, channel_axis=-1)
    assert np.allclose(to_numpy(tv), ref, atol=1e-5)
    both = build_method("tv+inpaint", MethodContext(checkpoints=Path("/nonexistent"), has_masks=True))
    assert both.settings["mask_source"] == "ground truth (oracle)"
    out = both.restore(item)
    outside = mask.expand_as(out) < 0.5
    quantised = torch.round(tv * 255) / 255
    assert torch.allclose(out[outside], quantised[outside], atol=1e-6)
    assert not torch.allclose(out[~outside], quantised[~outside], atol=1e-3)
    assert torch.equal(inpaint_telea(image, torch.zeros_like(mask)), image)
    gray = image.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
    for name in ("nlm", "bilateral", "tv"):
        o = build_method(name).restore(MethodInput(gray, "g", 0))
        assert o.shape == gray.shape and torch.allclose(o[:, 0], o[:, 1]) and torch.allclose(o[:, 1], o[:, 2])


def test_bm3d_on_a_gray_photo_is_finite_gray_and_denoises():
    """bm3d_rgb's opponent colour transform gives NaN on equal channels; the method must not."""
    pytest.importorskip("bm3d")
    clean = _photo(48, 48, 3).mean(dim=1, keepdim=True)
    noise = torch.from_numpy(numpy_rng(5).standard_normal((1, 1, 48, 48)).astype(np.float32))
    gray = (clean + 0.05 * noise).clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
    out = build_method("bm3d").restore(MethodInput(gray, "g", 0))
    assert torch.isfinite(out).all() and torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    ref = clean.expand(-1, 3, -1, -1).numpy()
    assert peak_signal_noise_ratio(ref, out.numpy(), data_range=1.0) > peak_signal_noise_ratio(ref, gray.numpy(),
                                                                                                data_range=1.0)


def test_summary_mean_and_ci_follow_aggregate(photos, tmp_path):
    result = _bench(photos, tmp_path, ["input"], metrics=["ssim"])
    values = list(result.runs[0].values.values())
    agg = aggregate([v["ssim"] for v in values])
    direct = build_metric("ssim")
    clean = load_image(tmp_path / "data" / "clean" / "p0.png")[0]
    noisy = load_image(tmp_path / "data" / "degraded" / "p0.png")[0]
    assert values[0]["ssim"] == pytest.approx(float(direct(noisy, clean)[0]))
    assert agg.format(3) in (tmp_path / "summary.md").read_text()


def test_cli_bench_and_list(photos, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["bench", "--suite", f"clean:{photos}", "--methods", "input,tv", "--metrics", "psnr,ssim",
                 "--max-side", "48", "--seed", "1", "--set", "tv.weight=0.05", "--no-progress", "--out", str(out)])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["methods"]["tv"]["settings"]["weight"] == 0.05 and manifest["seed"] == 1
    summary = _read_csv(out / "summary.csv")
    assert [r["method"] for r in summary] == ["input", "tv"]
    # the summary table is printed when it finishes: one row per method, the numbers of summary.csv
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert printed[0].startswith("| method | n | psnr ↑ | ssim ↑ | s/photo |")
    for row, line in zip(summary, printed[2:], strict=True):
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        assert cells[:2] == [row["method"], row["n"]]
        assert float(cells[2].split(" ± ")[0]) == pytest.approx(float(row["psnr"]), abs=0.005)
        assert float(cells[3].split(" ± ")[0]) == pytest.approx(float(row["ssim"]), abs=0.0005)
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "nlm+inpaint" in listed and "clean:DIR" in listed and "kid" in listed
    assert main(["bench", "--suite", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main(["bench", "--suite", "embedded", "--methods", "zzz", "--out", str(tmp_path / "y")]) == 2
    assert main(["bench", "--suite", "embedded", "--set", "tv.nope=1", "--out", str(tmp_path / "z")]) != 0


def test_batched_scoring_equals_photo_by_photo_and_isolates_failures(tmp_path):
    photos = tmp_path / "same"
    for i in range(3):
        save_image(_photo(40, 40, 10 + i), photos / f"s{i}.png")
    metrics = ["psnr", "ssim", "ms_ssim"]
    one = _bench(photos, tmp_path / "one", ["input", "tv"], metrics=metrics, metric_batch=1)
    many = _bench(photos, tmp_path / "many", ["input", "tv"], metrics=metrics, metric_batch=3)
    for a, b in zip(one.runs, many.runs, strict=True):
        for image, values in a.values.items():
            assert values["psnr"] == pytest.approx(b.values[image]["psnr"], rel=1e-12)
            assert values["ssim"] == pytest.approx(b.values[image]["ssim"], rel=1e-9)
        assert "161" in b.errors["ms_ssim"]  # too small for MS-SSIM: NaN and the reason, not a crash
    assert _read_csv(tmp_path / "many" / "summary.csv")[0]["ms_ssim"] == ""
    assert "`ms_ssim` failed for `input`" in (tmp_path / "many" / "summary.md").read_text()


def test_severity_presets_rerun_the_suite(photos, tmp_path):
    _bench(photos, tmp_path, ["input"], metrics=["psnr"], severity=["light", "paper"])
    assert (tmp_path / "severity" / "light" / "data" / "suite.json").is_file()
    assert not (tmp_path / "severity" / "paper").exists()  # the main run is the paper preset
    assert (tmp_path / "figures" / "severity_presets.png").is_file()
    assert json.loads((tmp_path / "manifest.json").read_text())["severity"]["presets"] == ["light", "paper"]


def test_checkpoint_digests_change_with_a_retrained_stage(tmp_path):
    # the digests are part of ours' settings: a retrained stage must change them (stale cached outputs go)
    from oldphoto_bench.bench.methods.ours import checkpoint_digests

    for stage in ("vae-a", "mapping"):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "last.pt").write_bytes(stage.encode())
    before = checkpoint_digests(tmp_path, ("vae-a", "mapping", "scratch"))
    assert set(before) == {"vae-a", "mapping"}  # an absent stage is left out
    (tmp_path / "mapping" / "last.pt").write_bytes(b"retrained")
    after = checkpoint_digests(tmp_path, ("vae-a", "mapping", "scratch"))
    assert after["vae-a"] == before["vae-a"] and after["mapping"] != before["mapping"]
