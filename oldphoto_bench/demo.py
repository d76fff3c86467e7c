"""The demo: the whole method on the photos shipped inside scikit-image, with nothing trained or downloaded.

    from oldphoto_bench.demo import run_demo
    result = run_demo("oldphoto_demo")          # about a minute on 2 CPU cores with the shipped tiny networks
    print(result.table)

What it does (``oldphoto-bench demo`` is a thin wrapper):

1. ages the 8 embedded photos with ``preset`` and ``seed`` and runs the benchmark on them:
   :func:`oldphoto_bench.bench.run_benchmark` on suite ``embedded`` with ``methods`` (default
   ``input, nlm, bilateral, tv, ours``), the very call ``oldphoto-bench bench --suite embedded`` makes, so
   the numbers are the same; ``ours`` runs every stage its checkpoints allow (scratch detection and face
   refinement when ``RUNS/scratch`` and ``RUNS/face`` exist);
2. writes the benchmark's report into ``out`` (``summary.csv``, ``summary.md``, ``per_image.csv``,
   ``summary.json``, ``figures/``, ``manifest.json``; outputs cached under ``cache/``, see
   :mod:`oldphoto_bench.bench.harness`);
3. adds ``contact_sheet.png`` (one row per photo: input | ours | reference, from the outputs the benchmark
   cached, nothing is restored twice), ``stages.png`` (one photo through every stage: input, scratch mask,
   global restoration, refined faces, reference; the only photo restored a second time, to keep the
   intermediate outputs) and ``demo_manifest.json`` (settings, seed, versions, git revision, and the
   provenance of every checkpoint: path, size, sha256 and its training record);
4. optionally (``ageing_sheets=True``) ``ageing/contact_<preset>.png``: clean | aged | mask for every preset.

A rerun into the same folder computes nothing that is cached; a folder prepared with other settings is
refused by the benchmark (choose another ``out``), and a non-empty folder that holds files no demo wrote is
refused before anything is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .provenance import sha256_file

DEMO_MANIFEST = "demo_manifest.json"
CONTACT_SHEET = "contact_sheet.png"
STAGES_SHEET = "stages.png"
AGEING_DIR = "ageing"
DEFAULT_MAX_SIDE = 512  # = the benchmark's default, so `demo` and `bench --suite embedded` give the same numbers
TABLE_METRICS = ("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid")  # the columns printed (all in summary.md)
CHECKPOINT_STAGES = ("vae-a", "vae-b", "mapping", "scratch", "face")
STAGES_PHOTO = "astronaut"  # the embedded photo with a face; the first photo when it is left out
PLACEHOLDER_GRAY = 0.85
# Everything a demo or benchmark run writes at the top of its folder (a folder holding anything else is refused).
KNOWN_ENTRIES = {"data", "cache", "figures", "severity", AGEING_DIR, "per_image.csv", "summary.csv", "summary.md",
                 "summary.json", "manifest.json", DEMO_MANIFEST, CONTACT_SHEET, STAGES_SHEET}


@dataclass
class DemoResult:
    """``bench``: the benchmark's result; ``table``: the summary table printed by the CLI (markdown);
    ``files``: every file written, by label; ``ours``: the run of ``ours`` (None when not asked for)."""

    out: Path
    bench: Any
    table: str
    files: dict[str, Path] = field(default_factory=dict)
    ours: Any = None
    seconds: float = 0.0

    @property
    def ours_reason(self) -> str | None:
        """Why ``ours`` did not run (None when it ran or was not asked for)."""
        return None if self.ours is None else self.ours.reason


def check_out_folder(out: Path) -> None:
    """Refuse a non-empty ``out`` holding files no demo or benchmark wrote (a demo never writes among them)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; choose a folder")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in KNOWN_ENTRIES and not p.name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ValueError(f"--out {out} holds files that no demo wrote ({shown}); choose an empty or new folder")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def checkpoint_provenance(runs: str | Path, stages: Sequence[str] = CHECKPOINT_STAGES) -> dict[str, Any]:
    """Where each stage's checkpoint comes from: ``{folder, stages: {stage: {present, path, bytes, sha256,
    provenance (the shipped provenance.json), training (the run's manifest.json less config and versions)}}}``."""
    runs = Path(runs)
    out: dict[str, Any] = {"folder": str(runs.resolve()), "stages": {}}
    for stage in stages:
        path = runs / stage / "last.pt"
        entry: dict[str, Any] = {"present": path.is_file()}
        if entry["present"]:
            entry.update(path=str(path.resolve()), bytes=path.stat().st_size, sha256=sha256_file(path))
            shipped = _read_json(runs / stage / "provenance.json")
            if shipped is not None:
                entry["provenance"] = shipped
            trained = _read_json(runs / stage / "manifest.json")
            if isinstance(trained, dict):
                entry["training"] = {k: v for k, v in trained.items() if k not in ("config", "versions")}
        out["stages"][stage] = entry
    return out


def summary_table(bench: Any, metrics: Sequence[str] = TABLE_METRICS) -> str:
    """The benchmark's markdown table (:func:`oldphoto_bench.bench.report.markdown`) restricted to ``metrics``
    (those computed here): mean ± 95% CI, best in bold, seconds per photo."""
    from .bench.console import console_table

    return console_table(bench, metrics)


def _placeholder(like: torch.Tensor) -> torch.Tensor:
    return torch.full_like(like, PLACEHOLDER_GRAY)


def _cached(bench: Any, method: str, name: str) -> torch.Tensor | None:
    from . import imageio

    png = bench.out / "cache" / method / f"{name}.png"
    return imageio.load_image(png, max_pixels=None)[0] if png.is_file() else None


def contact_sheet_rows(bench: Any, ours: Any) -> tuple[list[list[torch.Tensor]], list[str], list[str]]:
    """``(rows, column labels, row labels)``: per photo the aged input, our output (the benchmark's cached PNG;
    a gray tile when ours did not run) and the clean reference, each ``(1, 3, H, W)`` in [0, 1]."""
    ran = ours is not None and ours.available
    label = "ours" if ran else ("ours (did not run)" if ours is not None else "ours (not in --methods)")
    rows = []
    for it in bench.suite.items:
        degraded = it.load_degraded()
        restored = _cached(bench, "ours", it.name) if ran else None
        rows.append([degraded, restored if restored is not None else _placeholder(degraded), it.load_clean()])
    return rows, ["input (aged)", label, "reference"], bench.suite.names()


def _frame(image: torch.Tensor, boxes: Sequence[Sequence[float]], width: int = 2) -> torch.Tensor:
    """``image`` with a red frame of ``width`` pixels around each ``[x0, y0, x1, y1]`` box."""
    out = image.clone()
    h, w = out.shape[-2:]
    red = torch.tensor([1.0, 0.0, 0.0], dtype=out.dtype).view(1, 3, 1, 1)  # broadcasts over any band
    for box in boxes:
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(w, int(round(box[2]))), min(h, int(round(box[3])))
        if x1 <= x0 or y1 <= y0:
            continue
        out[..., y0 : min(y1, y0 + width), x0:x1] = red
        out[..., max(y0, y1 - width) : y1, x0:x1] = red
        out[..., y0:y1, x0 : min(x1, x0 + width)] = red
        out[..., y0:y1, max(x0, x1 - width) : x1] = red
    return out


def stages_row(bench: Any, ours: Any, photo: str | None = None) -> tuple[list[torch.Tensor], list[str], str]:
    """One photo through every stage of ``ours`` (built with the settings the benchmark used): the input,
    the detected scratch mask over it (with scratch detection), the global restoration, the refined faces
    with their boxes (with the face stage) and the reference. Returns ``(images, labels, photo name)``."""
    from .restore import Restorer
    from .viz import mask_overlay

    names = bench.suite.names()
    name = photo if photo in names else (STAGES_PHOTO if STAGES_PHOTO in names else names[0])
    item = bench.suite.items[names.index(name)]
    s = ours.settings
    restorer = Restorer(s["checkpoints"], s["device"], with_scratch=s["with_scratch"], faces=s["faces"],
                        tile=s["tile"])
    degraded = item.load_degraded()
    res = restorer.restore(degraded)
    images, labels = [degraded], ["input (aged)"]
    if "mask" in res.stages:
        images.append(mask_overlay(degraded, res.stages["mask"]))
        labels.append(f"scratch mask ({100 * float(res.stages['mask'].mean()):.1f}%)")
    images.append(res.stages["global"])
    labels.append("global restoration")
    if s["faces"]:
        boxes = [f["box"] for f in res.details["faces"]]
        images.append(_frame(res.stages["final"], boxes))
        labels.append(f"faces refined ({len(boxes)})")
    images.append(item.load_clean())
    labels.append("reference")
    return images, labels, name


def ageing_sheets(bench: Any, folder: Path, progress: bool = True, cell: int = 256) -> dict[str, Path]:
    """For every shipped preset, ``folder/contact_<preset>.png``: clean | aged | mask (red) per photo of the
    suite, aged with the suite's per-photo seeds (:func:`~oldphoto_bench.bench.suites.image_seed`)."""
    from tqdm import tqdm

    from .bench.suites import image_seed
    from .degrade import Synthesizer, preset_names
    from .viz import contact_sheet, mask_overlay, save_sheet

    presets = preset_names()
    items = bench.suite.items
    seed = int(bench.settings["seed"])
    files = {}
    with tqdm(total=len(presets) * len(items), desc="ageing sheets", unit="img", disable=not progress) as bar:
        for preset in presets:
            synth, rows = Synthesizer(preset), []
            for it in items:
                clean = it.load_clean()
                aged = synth(clean, seed=image_seed(seed, it.name))
                rows.append([clean, aged.image, mask_overlay(aged.image, aged.mask)])
                bar.update(1)
            sheet = contact_sheet(rows, ["clean", f"aged ({preset})", "mask (red)"], [it.name for it in items],
                                  cell=cell)
            files[f"ageing_{preset}"] = save_sheet(sheet, folder / f"contact_{preset}.png")
    return files


def run_demo(out: str | Path = "oldphoto_demo", checkpoints: str | Path | None = None, seed: int = 0,
             preset: str = "paper", max_images: int | None = None, max_side: int = DEFAULT_MAX_SIDE,
             methods: Sequence[str] | None = None, device: str = "cpu", progress: bool = True,
             stages: bool = True, ageing: bool = False, threads: int | None = 1, cell: int = 256,
             log: Callable[[str], None] = print) -> DemoResult:
    """Run the demo into ``out`` (see the module docstring) and return what it did.

    ``checkpoints``: runs folder of our networks (None: :func:`oldphoto_bench.restore.default_checkpoints`).
    ``methods``: benchmark methods (None: the benchmark's defaults). ``stages``: write ``stages.png``.
    ``ageing``: also write the per-preset ageing sheets. ``threads``: torch threads while it runs (1: on 2
    shared cores one thread is several times faster than two; None leaves torch's setting), restored after.
    ``cell``: tile side of the contact sheets in pixels.
    Raises ``ValueError`` for an ``out`` holding other files or a suite prepared with other settings, and
    ``KeyError`` for unknown methods or presets (listing the valid ones), before any work.
    """
    from .bench import DEFAULT_METHODS, run_benchmark
    from .provenance import write_manifest
    from .restore import default_checkpoints
    from .viz import contact_sheet, save_sheet

    t0 = time.perf_counter()
    out = Path(out)
    check_out_folder(out)
    ckpt = Path(checkpoints) if checkpoints is not None else default_checkpoints()
    methods = list(methods) if methods is not None else list(DEFAULT_METHODS)
    settings = {"suite": "embedded", "preset": preset, "seed": int(seed), "max_side": int(max_side),
                "max_images": max_images, "methods": methods, "checkpoints": str(ckpt), "device": device,
                "threads": threads, "stages": bool(stages), "ageing_sheets": bool(ageing)}
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        bench = run_benchmark("embedded", methods, out, preset=preset, seed=seed, checkpoints=ckpt, device=device,
                              max_side=max_side, max_images=max_images, progress=progress, log=log)
        ours = next((r for r in bench.runs if r.name == "ours"), None)
        files = {name: out / name for name in ("summary.csv", "summary.md", "per_image.csv", "summary.json",
                                               "manifest.json")}
        files.update({f"figure_{p.stem}": p for p in sorted((out / "figures").glob("*.png"))})
        rows, cols, names = contact_sheet_rows(bench, ours)
        files["contact_sheet"] = save_sheet(contact_sheet(rows, cols, names, cell=cell), out / CONTACT_SHEET)
        if stages and ours is not None and ours.available:
            images, labels, name = stages_row(bench, ours)
            files["stages"] = save_sheet(contact_sheet([images], labels, [name], cell=cell), out / STAGES_SHEET)
        if ageing:
            files.update(ageing_sheets(bench, out / AGEING_DIR, progress, cell))
    finally:
        torch.set_num_threads(threads_before)
    seconds = time.perf_counter() - t0
    result = DemoResult(out, bench, summary_table(bench), files, ours, seconds)
    files["demo_manifest"] = out / DEMO_MANIFEST
    write_manifest(files["demo_manifest"], seed=int(seed), config=settings,
                   checkpoints=checkpoint_provenance(ckpt),
                   ours={"ran": bool(ours and ours.available), "unavailable": result.ours_reason,
                         "settings": ours.settings if ours else None,
                         "calls_this_run": ours.calls if ours else 0},
                   benchmark_manifest="manifest.json", seconds=round(seconds, 2),
                   files={k: str(p.relative_to(out)) for k, p in files.items()})
    log(f"demo finished in {seconds:.0f} s; outputs in {out}")
    return result
