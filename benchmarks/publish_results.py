"""Regenerate the published results in ``results/`` and the README's main table with one command.

    python benchmarks/publish_results.py                                  # every step (hours on a CPU)
    python benchmarks/publish_results.py --only readme                    # README table from results/ only
    python benchmarks/publish_results.py --only kodak24 --max-images 2    # a quick try

Steps (``--only kodak24,embedded,old,readme``; default all, in this order):

    kodak24    the benchmark harness (the code path of ``oldphoto-bench bench``) on
               ``clean:../shared/data/clean/kodak24`` (never trained on), preset ``paper``, seed 0, every
               registered method, every metric that can be built here -> results/kodak24_paper_seed0/
    embedded   the same on the photos shipped with scikit-image (``--suite embedded``)
               -> results/embedded_paper_seed0/
    old        our full pipeline (scratch detection, latent translation, faces) on every photo under
               ``../shared/data/old`` (recursive) -> results/old_photos/: contact_sheet.jpg (input | detected
               scratches | restored), restored/<name>.jpg (at most --old-side pixels, JPEG quality 90),
               manifest.json; and the harness's ``real:`` suite (no-reference metrics) in real_suite/
    readme     README.md between ``<!-- results:main-table:start/end -->``: the Kodak24 table (mean ± 95%
               CI, best in bold), the settings, the checkpoints' git revision, the command, and a sentence
               computed from the numbers (PSNR gain over the input, which baselines beat ours); between
               ``<!-- results:figure:start/end -->`` the PSNR bar chart and the image grid

Each benchmark folder holds summary.{csv,md,json}, per_image.csv, manifest.json, figures/ (the image grid
as grid.jpg) and publish.json (the command, the settings of this script, the checkpoints' provenance). The
aged photos and every method's outputs stay in the work folder (``--work``, default ``.publish_work/``,
git-ignored): a rerun reuses them and computes only what is missing. A results subfolder is written next
to the old one and swapped in only when its step completed. Missing data or checkpoints skip a step with a
message; a step that fails is reported and the next one runs. Exit code: 0 every step done, 1 some
skipped, 2 some failed.

Deep Image Prior fits one network per photo: on a CPU its default budget (1000 iterations at width 64)
takes hours per Kodak photo (~10 s per iteration measured), so on ``--device cpu`` it runs 30 iterations at
width 32 (1-2.5 min per photo; --dip-iterations / --dip-width change it) and the README says so: its row
is not DIP at full budget. Measured on the shared 2-core machine with smoke checkpoints, per photo: kodak24
~6 min (dip 2.5 min, bm3d and bm3d+inpaint 1 min, metrics 2 min), embedded the same; old ~70 s for all 12.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, Path(__file__).resolve().parent):  # the package without installing; publish_readme
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

STEPS = ("kodak24", "embedded", "old", "readme")
PRESET, SEED = "paper", 0
BENCH = {"kodak24": "kodak24_paper_seed0", "embedded": "embedded_paper_seed0"}  # step -> results subfolder
OLD_FOLDER = "old_photos"
# ~1 min per 500-px photo on 2 idle CPU cores; 2-2.5 min measured on the busy shared 2-core machine
CPU_DIP = {"iterations": 30, "width": 32}
REAL_METHODS = ("input", "nlm", "bilateral", "tv", "ours")  # the real: suite (no references): cheap methods
README_METRICS = ("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid")  # README columns (all in summary.md)
COPIED = ("summary.csv", "summary.md", "summary.json", "per_image.csv", "manifest.json")
GRID, GRID_JPEG = "grid.png", "grid.jpg"  # the harness's image grid, published as JPEG (quality 90)
MARKERS = {"table": ("<!-- results:main-table:start -->", "<!-- results:main-table:end -->"),
           "figure": ("<!-- results:figure:start -->", "<!-- results:figure:end -->")}


class Skip(Exception):
    """A step cannot run here (data or checkpoints missing); the message says why."""


# ---- files -----------------------------------------------------------------------------------------------
def portable(text: str, work: Path) -> str:
    """Machine paths in ``text`` as ``<work>/...``, repo-relative, ``../shared/...`` or ``~/`` paths (none in
    results).

    Only the shared data beside the checkout is written relative to its parent folder: the rest of that
    folder is no part of the project (a clone in /tmp or in the home folder would otherwise turn every
    temporary file or other project there into a fake ``../`` neighbour). The home folder covers e.g. the
    torch hub cache named in "weights not found" notes. A path is replaced only as whole components (not
    inside ``/var/tmp`` for ``/tmp``, nor in ``/tmpx``); longer paths first, on a tie the earlier label.
    """
    places = [(work, "<work>"), (REPO, "."), (REPO.parent / "shared", "../shared")]
    home = Path.home()
    if len(home.parts) > 1:  # never rewrite "/" itself
        places.append((home, "~"))
    labels = sorted(places, key=lambda t: -len(str(t[0])))
    for path, label in labels:
        text = re.sub(r"(?<![\w.~/-])" + re.escape(str(path)) + r"(?![\w.-])", label, text)
    return text


def copy_portable(src: Path, dst: Path, work: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix in (".json", ".csv", ".md", ".txt"):
        dst.write_text(portable(src.read_text(), work))
    else:
        shutil.copyfile(src, dst)


def staging(results: Path, name: str) -> Path:
    stage = results / f".{name}.staging"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


def swap_in(stage: Path, final: Path, log: Callable[[str], None]) -> None:
    """Replace ``final`` by the completed ``stage`` (the old folder goes only once the new one is in)."""
    previous = final.with_name(f".{final.name}.previous")
    if previous.exists():
        shutil.rmtree(previous)
    if final.exists():
        final.rename(previous)
    try:
        stage.rename(final)
    except BaseException:
        if previous.exists():
            previous.rename(final)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    log(f"published {final}")


def write_json(path: Path, obj: Any, work: Path) -> None:
    path.write_text(portable(json.dumps(obj, indent=1, default=str), work) + "\n")


def checkpoint_provenance(runs: Path) -> dict[str, Any]:
    """``{path, stages: {stage: {git_revision, steps, ...}}}`` from each ``RUNS/<stage>/provenance.json``
    (shipped checkpoints, ``oldphoto-bench ship``) or else ``RUNS/<stage>/manifest.json`` (a training run)."""
    stages = {}
    for stage in sorted(p for p in runs.glob("*") if (p / "last.pt").is_file()):
        for name, keys in (("provenance.json", ("git_revision", "steps", "run_started", "command", "sha256")),
                           ("manifest.json", ("git_revision", "total_steps", "created", "command"))):
            try:
                m = json.loads((stage / name).read_text())
            except (OSError, ValueError):
                continue
            stages[stage.name] = {"from": name, **{k: m.get(k) for k in keys}}
            break
        else:
            stages[stage.name] = {"from": None}
    return {"path": str(runs), "stages": stages}


def command_line() -> str:
    return "python benchmarks/publish_results.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])


# ---- steps -----------------------------------------------------------------------------------------------
def need_checkpoints(runs: Path, with_scratch: bool) -> None:
    from oldphoto_bench.restore import MissingCheckpointsError, check_checkpoints

    try:
        check_checkpoints(runs, with_scratch)
    except MissingCheckpointsError as e:
        raise Skip(str(e)) from None


def all_methods() -> list[str]:
    """Every registered method: the input, classical, learned, then ours (names sorted within a kind)."""
    from oldphoto_bench.bench.methods import KINDS, METHODS, method_info

    return sorted(METHODS.names(), key=lambda n: (KINDS.index(method_info(n)["kind"]), n))


def dip_options(args: argparse.Namespace) -> dict[str, Any]:
    opts = dict(CPU_DIP) if args.device == "cpu" else {}
    if args.dip_iterations is not None:
        opts["iterations"] = args.dip_iterations
    if args.dip_width is not None:
        opts["width"] = args.dip_width
    return opts


def copy_report(src: Path, dst: Path, work: Path) -> None:
    for name in COPIED:
        if (src / name).is_file():
            copy_portable(src / name, dst / name, work)
    for fig in sorted((src / "figures").glob("*.png")):
        if fig.name == GRID:  # photos: a JPEG is a fraction of the PNG's size
            from PIL import Image

            (dst / "figures").mkdir(parents=True, exist_ok=True)
            with Image.open(fig) as im:
                im.convert("RGB").save(dst / "figures" / GRID_JPEG, quality=90)
        else:
            copy_portable(fig, dst / "figures" / fig.name, work)


def bench_step(step: str, args: argparse.Namespace, log: Callable[[str], None]) -> Path:
    """Steps ``kodak24`` and ``embedded``: run the harness into the work folder, publish the small files."""
    from oldphoto_bench.bench import run_benchmark
    from oldphoto_bench.bench.methods import method_options

    if step == "kodak24":
        data = args.shared / "clean" / "kodak24"
        if not data.is_dir():
            raise Skip(f"{data} not found: Kodak24 comes with ../shared/data (see datasets/README.md)")
        suite = f"clean:{data}"
    else:
        suite = "embedded"
    need_checkpoints(args.checkpoints, with_scratch=False)
    methods = args.methods or all_methods()
    options = {"dip": dip_options(args)} if "dip" in methods and dip_options(args) else {}
    if options:
        defaults = {k: method_options("dip")[k] for k in options["dip"]}
        log(f"dip: reduced budget {options['dip']} (defaults {defaults}) on {args.device}")
    work = args.work / f"{BENCH[step]}_n{args.max_images or 'all'}"
    t0 = time.perf_counter()
    result = run_benchmark(suite, methods, work, preset=PRESET, seed=SEED, checkpoints=args.checkpoints,
                           device=args.device, metrics=args.metrics, max_images=args.max_images,
                           method_options=options, weights_dir=args.weights_dir, progress=args.progress,
                           log=log)
    stage = staging(args.results, BENCH[step])
    try:
        copy_report(work, stage, args.work)
        dip_note = None
        if options:
            used = ", ".join(f"{k}={v}" for k, v in options["dip"].items())
            default = ", ".join(f"{k}={v}" for k, v in defaults.items())
            dip_note = (f"dip ran with a reduced budget ({used}; defaults {default}): it fits one network "
                        "per photo (hours per photo at the default on a CPU); its row is not DIP at full "
                        "budget")
        write_json(stage / "publish.json", {
            "step": step, "command": command_line(), "suite": suite, "preset": PRESET, "seed": SEED,
            "photos": len(result.suite), "max_images": args.max_images, "device": args.device,
            "methods": methods, "method_options": options, "dip_note": dip_note,
            "ran": [r.name for r in result.runs if r.available],
            "unavailable": {r.name: r.reason for r in result.runs if not r.available},
            "checkpoints": checkpoint_provenance(args.checkpoints),
            "seconds": round(time.perf_counter() - t0, 1),
            "seconds_per_photo": {r.name: (sum(r.seconds.values()) / len(r.seconds) if r.seconds else None)
                                  for r in result.runs}}, args.work)
        swap_in(stage, args.results / BENCH[step], log)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return args.results / BENCH[step]


def old_step(args: argparse.Namespace, log: Callable[[str], None]) -> Path:
    """Step ``old``: restore every real old photo at full size; contact sheet, small JPEGs, manifest."""
    from oldphoto_bench import imageio
    from oldphoto_bench.bench import run_benchmark
    from oldphoto_bench.bench.suites import resize_max_side, safe_stem
    from oldphoto_bench.data.sources import scan_images
    from oldphoto_bench.metrics import edge_contrast_ratio, gradient_sharpness
    from oldphoto_bench.provenance import write_manifest
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.restore.inpaint import dilate_mask
    from oldphoto_bench.viz import contact_sheet, mask_overlay

    src = args.shared / "old"
    if not src.is_dir():
        raise Skip(f"{src} not found: the real old photos come with ../shared/data (see datasets/README.md)")
    paths = scan_images(src)[: args.max_images]
    if not paths:
        raise Skip(f"no image files under {src}")
    need_checkpoints(args.checkpoints, with_scratch=True)
    restorer = Restorer(args.checkpoints, device=args.device, with_scratch=True, faces=True)
    for note in restorer.notes:
        log(f"note: {note}")
    stage = staging(args.results, OLD_FOLDER)
    try:
        rows, labels, photos = [], [], []
        for path in paths:
            rel = path.relative_to(src)
            name = safe_stem(rel.as_posix())
            image, info = imageio.load_image(path)
            t0 = time.perf_counter()
            res = restorer.restore(image, grayscale=True if info.was_gray else None)
            seconds = time.perf_counter() - t0
            side = args.old_side
            small_in, small_out = resize_max_side(image, side), resize_max_side(res.image, side)
            imageio.save_image(small_out, stage / "restored" / f"{name}.jpg", grayscale=info.was_gray,
                               quality=90)
            mask = res.mask if res.mask is not None else image.new_zeros(1, 1, *image.shape[-2:])
            small_mask = resize_max_side(mask, args.old_side).gt(0.25).float()
            rows.append([small_in, mask_overlay(small_in, small_mask), small_out])
            labels.append(f"{rel.parent.name}/{rel.stem}")
            d = res.details
            # sharpness (mean Sobel gradient of the luma, full size) of each stage over the input's
            sharp_in = float(gradient_sharpness(image)[0])
            sharp = {k: round(float(gradient_sharpness(res.stages[k])[0]) / max(sharp_in, 1e-12), 4)
                     for k in ("global", "final")}
            # the input's strongest 5% of edges after a 1 px Gaussian (grain removal barely moves it), outside
            # the detected damage grown by 4 px (a removed scratch's edges are meant to go)
            damage = dilate_mask(mask, 4)
            edges = {k: round(float(edge_contrast_ratio(res.stages[k], image, exclude=damage)[0]), 4)
                     for k in ("global", "final")}
            photos.append({"source": str(path), "restored": f"restored/{name}.jpg",
                           "size": [info.height, info.width],
                           "was_gray": info.was_gray, "seconds": round(seconds, 2),
                           "stage_seconds": {k: round(v, 3) for k, v in d["seconds"].items()},
                           "mask_fraction": d["mask_fraction"], "faces": len(d["faces"]),
                           "sharpness_input": round(sharp_in, 5), "sharpness_ratio": sharp,
                           "edge_contrast_ratio": edges})
            log(f"old: {rel} restored in {seconds:.1f} s ({len(d['faces'])} face(s)), sharpness "
                f"{sharp['final']:.2f} x the input's, edge contrast {edges['final']:.2f}, "
                f"{100 * (d['mask_fraction'] or 0):.2f}% flagged")
        write_old_table(stage / "README.md", photos, src)
        sheet = contact_sheet(rows, col_labels=["input", "detected scratches (red)", "restored"],
                              row_labels=labels, cell=args.sheet_cell)
        sheet.save(stage / "contact_sheet.jpg", quality=85)
        real = {"skipped": "--no-real-suite"}
        if args.real_suite:
            work = args.work / f"old_real_n{args.max_images or 'all'}"
            result = run_benchmark(f"real:{src}", list(REAL_METHODS), work, checkpoints=args.checkpoints,
                                   device=args.device, max_images=args.max_images,
                                   weights_dir=args.weights_dir,
                                   progress=args.progress, log=log)
            copy_report(work, stage / "real_suite", args.work)
            real = {"folder": "real_suite", "methods": list(REAL_METHODS), "photos": len(result.suite)}
        write_manifest(stage / "manifest.json", config={
            "command": command_line(), "source": str(src),
            "checkpoints": checkpoint_provenance(args.checkpoints),
            "pipeline": {"with_scratch": True, "faces": True, "device": args.device,
                         "threshold": restorer.threshold,
                         "dilation": restorer.dilation, "notes": restorer.notes},
            "outputs": f"restored at full size, saved downscaled to max side {args.old_side} px "
                       "(JPEG quality 90); "
                       f"contact sheet cells {args.sheet_cell} px", "real_suite": real}, photos=photos)
        for f in [*stage.rglob("*.json"), *stage.rglob("*.md"), *stage.rglob("*.csv")]:
            f.write_text(portable(f.read_text(), args.work))
        swap_in(stage, args.results / OLD_FOLDER, log)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return args.results / OLD_FOLDER


def write_old_table(path: Path, photos: list[dict[str, Any]], src: Path) -> None:
    """``README.md`` of the real old photos: per print the flagged share and the sharpness ratios."""
    import statistics

    lines = ["# Real old photos restored with the shipped checkpoints", "",
             "Sharpness: mean Sobel gradient magnitude of the luma at full size "
             "(`oldphoto_bench.metrics.gradient_sharpness`), as a ratio to the input's; below 1 is smoother "
             "(blurrier, or grain and scratches removed: look at `contact_sheet.jpg`).", "",
             "Edge contrast: the same gradient after a Gaussian of 1 px, averaged over the input's strongest 5% "
             "of edges outside the detected damage (grown by 4 px: a removed scratch's edges are meant to go), "
             "restored over input (`oldphoto_bench.metrics.edge_contrast_ratio`); below 1 = those edges got "
             "softer (or lost contrast). Removing grain barely moves it.", "",
             "| photo | size | flagged (%) | sharpness global / input | sharpness final / input | "
             "edge contrast final / input | faces |",
             "|---|---|---|---|---|---|---|"]
    for p in photos:
        rel = Path(p["source"]).relative_to(src).as_posix() if Path(p["source"]).is_relative_to(src) else p["source"]
        flagged = "" if p["mask_fraction"] is None else f"{100 * p['mask_fraction']:.2f}"
        lines.append(f"| {rel} | {p['size'][1]}x{p['size'][0]} | {flagged} | {p['sharpness_ratio']['global']:.2f} | "
                     f"{p['sharpness_ratio']['final']:.2f} | {p['edge_contrast_ratio']['final']:.2f} | {p['faces']} |")
    ratios = [p["sharpness_ratio"]["final"] for p in photos]
    edges = [p["edge_contrast_ratio"]["final"] for p in photos]
    if ratios:
        lines += ["", f"Median sharpness ratio (final / input): {statistics.median(ratios):.2f} over {len(ratios)} "
                      f"prints (min {min(ratios):.2f}, max {max(ratios):.2f}).",
                  "", f"Median edge contrast ratio (final / input): {statistics.median(edges):.2f} "
                      f"(min {min(edges):.2f}, max {max(edges):.2f})."]
    path.write_text("\n".join(lines) + "\n")


def readme_step(args: argparse.Namespace, log: Callable[[str], None]) -> Path:
    """Step ``readme``: rewrite the README between the result markers from results/kodak24_paper_seed0."""
    from publish_readme import ensure_markers, render_figure, render_table, replace_between

    from oldphoto_bench.provenance import atomic_write_bytes

    folder = args.results / BENCH["kodak24"]
    if not (folder / "summary.json").is_file():
        raise Skip(f"{folder / 'summary.json'} not found: run the kodak24 step first")
    summary = json.loads((folder / "summary.json").read_text())
    publish = json.loads((folder / "publish.json").read_text()) if (folder / "publish.json").is_file() else {}
    if not args.readme.is_file():
        raise Skip(f"{args.readme} not found")
    rel = Path(os.path.relpath(folder, args.readme.parent)).as_posix()
    text = ensure_markers(args.readme.read_text(), MARKERS)
    text = replace_between(text, *MARKERS["table"], render_table(summary, publish, rel, README_METRICS))
    text = replace_between(text, *MARKERS["figure"], render_figure(folder, rel))
    atomic_write_bytes(args.readme, text.encode())
    log(f"rewrote the results section of {args.readme}")
    return args.readme


# ---- command line ----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from oldphoto_bench.restore import default_checkpoints

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(STEPS), metavar="STEPS",
                   help=f"comma-separated steps to run (default: {','.join(STEPS)})")
    p.add_argument("--checkpoints", type=Path, default=None, metavar="RUNS",
                   help=f"trained networks (default: default_checkpoints() = {default_checkpoints()})")
    p.add_argument("--results", type=Path, default=REPO / "results",
                   help="published results (default: results/)")
    p.add_argument("--work", type=Path, default=REPO / ".publish_work",
                   help="aged photos, method outputs and caches (default: .publish_work/, git-ignored)")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                   help="the shared data sets (default: ../shared/data)")
    p.add_argument("--readme", type=Path, default=REPO / "README.md",
                   help="README to rewrite (default: README.md)")
    p.add_argument("--max-images", type=int, default=None, metavar="N",
                   help="only the first N photos (quick runs)")
    p.add_argument("--methods", default=None, metavar="A,B,...",
                   help="benchmark methods (default: every registered)")
    p.add_argument("--metrics", default=None, metavar="A,B,...",
                   help="metrics (default: all that can be built)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu or cuda (default: cpu)")
    p.add_argument("--dip-iterations", type=int, default=None, metavar="N",
                   help=f"Deep Image Prior iterations (default: {CPU_DIP['iterations']} on cpu, the "
                        "method's on cuda)")
    p.add_argument("--dip-width", type=int, default=None, metavar="C",
                   help=f"Deep Image Prior width (default: {CPU_DIP['width']} on cpu, the method's on cuda)")
    p.add_argument("--weights-dir", type=Path, default=None, help="folder holding metric weights")
    p.add_argument("--old-side", type=int, default=640, metavar="PX",
                   help="max side of the published restorations (default: 640)")
    p.add_argument("--sheet-cell", type=int, default=256, metavar="PX", help="contact sheet cell side")
    p.add_argument("--no-real-suite", dest="real_suite", action="store_false",
                   help="old step: skip the harness's real: suite (no-reference metrics)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    args.steps = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in args.steps if s not in STEPS]
    if bad or not args.steps:
        p.error(f"unknown step(s) {bad}; valid steps: {', '.join(STEPS)}")
    split = lambda s: [t.strip() for t in s.split(",") if t.strip()] if s else None  # noqa: E731
    args.methods, args.metrics = split(args.methods), split(args.metrics)
    args.checkpoints = (args.checkpoints or default_checkpoints()).resolve()
    for k in ("results", "work", "shared", "readme"):
        setattr(args, k, getattr(args, k).resolve())
    return args


@contextlib.contextmanager
def exclusive(work: Path):
    """Hold ``WORK/publish.lock`` for the run: two runs at once would share the staging and work folders and
    publish a mix of both. The lock is an OS advisory lock, released when the process ends, however it ends."""
    import fcntl

    work.mkdir(parents=True, exist_ok=True)
    with open(work / "publish.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise SystemExit(f"publish_results: another run is publishing with the work folder {work} "
                             f"({handle.read().strip() or 'pid unknown'}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with exclusive(args.work):
        return publish(args)


def publish(args: argparse.Namespace) -> int:
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    run = {"kodak24": lambda: bench_step("kodak24", args, log),
           "embedded": lambda: bench_step("embedded", args, log),
           "old": lambda: old_step(args, log), "readme": lambda: readme_step(args, log)}
    done, skipped, failed = [], [], []
    for step in STEPS:
        if step not in args.steps:
            continue
        t0 = time.perf_counter()
        try:
            out = run[step]()
        except Skip as e:
            log(f"skip {step}: {e}")
            skipped.append(step)
            continue
        except Exception:  # a long unattended run goes on with the next step; the cache keeps what was done
            log(f"{step} failed (its published folder is unchanged):\n{traceback.format_exc()}")
            failed.append(step)
            continue
        done.append(step)
        log(f"{step}: done in {time.perf_counter() - t0:.1f} s -> {out}")
    log(f"publish_results: done {', '.join(done) or 'nothing'}"
        + (f"; skipped {', '.join(skipped)}" if skipped else "")
        + (f"; FAILED {', '.join(failed)}" if failed else ""))
    return 2 if failed else 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
