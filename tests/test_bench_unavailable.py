"""A method that cannot run never stops a benchmark: a missing package (checked when the method is built, or
met only when it runs) or an error on a photo gives that method an empty row with the reason in
summary.md, and the other methods finish."""

from __future__ import annotations

import csv
import importlib
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from oldphoto_bench.bench import Method, MethodContext, MethodInput, run_benchmark
from oldphoto_bench.bench.methods.classical import TotalVariation
from oldphoto_bench.cli import main
from oldphoto_bench.imageio import save_image
from oldphoto_bench.seeding import numpy_rng


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    for i, (h, w) in enumerate([(40, 48), (48, 40)]):
        rng = numpy_rng(i)
        save_image(torch.from_numpy(rng.random((1, 3, h, w)).astype(np.float32)), folder / f"p{i}.png")
    return folder


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {r["method"]: r for r in csv.DictReader(f)}


class NeedsAPackage(Method):
    """Imports a package only when it restores (as scikit-image's estimate_sigma imports PyWavelets)."""

    name: ClassVar[str] = "needs-a-package"
    description: ClassVar[str] = "test method"

    def __init__(self):
        super().__init__(MethodContext())
        self.package = "oldphoto_no_such_package"

    def restore(self, item: MethodInput) -> torch.Tensor:
        importlib.import_module(self.package)
        return item.image


class FailsOnSecond(Method):
    name: ClassVar[str] = "fails-on-second"
    description: ClassVar[str] = "test method"

    def __init__(self):
        super().__init__(MethodContext())
        self.calls = 0

    def restore(self, item: MethodInput) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise ValueError("broken on purpose")
        return item.image


def test_missing_pywavelets_leaves_nlm_empty_and_the_others_run(photos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pywt", None)  # `import pywt` now raises ImportError
    out = tmp_path / "out"
    result = run_benchmark(f"clean:{photos}", ["input", "nlm", "nlm+inpaint", "tv"], out, metrics=["psnr"],
                           progress=False, log=lambda s: None)
    rows = _rows(out)
    for name in ("input", "tv"):
        assert rows[name]["n"] == "2" and rows[name]["psnr"] != "" and rows[name]["note"] == ""
    for name in ("nlm", "nlm+inpaint"):
        assert rows[name]["n"] == "0" and rows[name]["psnr"] == "" and "PyWavelets" in rows[name]["note"]
    md = (out / "summary.md").read_text()
    assert "method `nlm` unavailable: PyWavelets is not installed" in md
    assert [r.available for r in result.runs] == [True, False, False, True]


def test_a_package_missing_at_run_time_or_an_error_on_a_photo_gives_an_empty_row(photos, tmp_path):
    out = tmp_path / "out"
    lines: list[str] = []
    result = run_benchmark(f"clean:{photos}", ["input", NeedsAPackage(), FailsOnSecond(), "tv"], out,
                           metrics=["psnr"], progress=False, log=lines.append)
    runs = {r.name: r for r in result.runs}
    assert runs["input"].available and runs["tv"].available and len(runs["tv"].values) == 2
    assert not runs["needs-a-package"].available and not runs["needs-a-package"].failed
    assert "oldphoto_no_such_package" in runs["needs-a-package"].reason
    bad = runs["fails-on-second"]
    assert bad.failed and "failed on photo p1" in bad.reason and "ValueError: broken on purpose" in bad.reason
    rows = _rows(out)
    assert rows["fails-on-second"]["n"] == "0" and rows["fails-on-second"]["psnr"] == ""
    md = (out / "summary.md").read_text()
    assert "method `needs-a-package` unavailable" in md and "method `fails-on-second` did not finish" in md
    assert any(line.startswith("fails-on-second: failed") for line in lines)


def test_cli_bench_finishes_and_exit_code_says_a_method_failed(photos, tmp_path, monkeypatch, capsys):
    def broken(self, array):
        raise RuntimeError("tv exploded")

    monkeypatch.setattr(TotalVariation, "denoise", broken)
    monkeypatch.setitem(sys.modules, "pywt", None)
    out = tmp_path / "out"
    code = main(["bench", "--suite", f"clean:{photos}", "--methods", "input,nlm,tv", "--metrics", "psnr",
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "unavailable: nlm" in err and "failed: tv" in err
    rows = _rows(out)
    assert rows["input"]["n"] == "2" and rows["nlm"]["n"] == "0" and rows["tv"]["n"] == "0"
    assert "RuntimeError: tv exploded" in rows["tv"]["note"]
