"""``oldphoto-bench bench``: run methods on a suite of photos and write tables, figures and a manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Benchmark restoration methods on one suite of photos, with every setting stated.

Suites (--suite):
  embedded          the photos shipped with scikit-image, aged with --preset and --seed
  clean:DIR         your clean photos, aged with --preset and --seed
  hf:<id>[:split]   a Hugging Face data set of clean photos, aged the same way
  real:DIR          real old photos without references: no-reference metrics and image grids only
Photos larger than --max-side are downscaled first (0 keeps them whole). The aged inputs, damage masks
and references are written once to OUT/data/{degraded,mask,clean}/ and reused.

Methods (--methods, comma-separated; default input,nlm,bilateral,tv,ours): see --list. A method that
cannot run here (checkpoints or an optional package missing) gets an empty row with the reason, and one
that raises an error on a photo gets an empty row with the error (exit code 1); the others still run. Our
method reads --checkpoints RUNS (vae-a, vae-b, mapping, and scratch/face when present); the learned
baselines read RUNS/baseline-pix2pix and RUNS/baseline-unet (`oldphoto-bench train baseline NAME`),
ours-no-pn RUNS/mapping-no-pn (`oldphoto-bench train mapping-no-pn`). Without --checkpoints, RUNS is
the folder shipped with the package (oldphoto_bench/pretrained/tiny, tiny recipe; see `oldphoto-bench
ship --list`). Method options:
--set METHOD.OPTION=VALUE, e.g. --set dip.iterations=300 --set tv.weight=0.05.

Metrics (--metrics; default: every metric that can be built here, the others listed with the reason,
e.g. missing weights: see `oldphoto-bench weights`).

When it finishes it prints the summary table (mean ± 95% CI, best in bold; the columns psnr, ssim,
ms_ssim, lpips, fid and kid that were computed, or --metrics), then every metric and method that gave no
numbers here, with the reason.

Writes into --out: per_image.csv (method, image, metric, value), summary.csv (method, n, one column per
metric), summary.md (mean ± 95% CI, best in bold, reasons), summary.json, figures/ (bar chart per
metric, metric against severity, image grid), manifest.json (versions, seeds, settings, git revision,
metric contracts). Outputs are cached per method and photo under OUT/cache/: an interrupted run resumes,
and a rerun only computes what is missing. --severity reruns the suite at light, paper and heavy (or the
given presets) into OUT/severity/ for the metric-against-preset figure."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import BENCH_METHODS, add_device_argument

    p = sub.add_parser("bench", help="benchmark methods on a suite: tables, figures, manifest", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=None, metavar="NAME", help="embedded, clean:DIR, hf:<id>[:split] or real:DIR")
    p.add_argument("--methods", default=None, metavar="A,B,...",
                   help=f"methods to run (default: {','.join(BENCH_METHODS)})")
    p.add_argument("--metrics", default=None, metavar="A,B,...", help="metrics (default: all that can be built)")
    p.add_argument("--preset", default="paper", help="degradation preset for synthetic suites (default: paper)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument("--checkpoints", type=Path, default=None, metavar="RUNS",
                   help="runs folder with the trained networks (default: the checkpoints shipped with the "
                        "package, oldphoto_bench/pretrained/tiny)")
    add_device_argument(p)
    p.add_argument("--max-side", type=int, default=512, metavar="PX",
                   help="downscale larger photos to this side before ageing (default: 512; 0: full size)")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="use only the first N photos")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="a method option (repeatable)")
    p.add_argument("--severity", nargs="?", const="light,paper,heavy", default=None, metavar="P1,P2,...",
                   help="also run the suite at these presets (default light,paper,heavy) for the severity figure")
    p.add_argument("--weights-dir", type=Path, default=None, help="folder holding metric weights")
    p.add_argument("--out", type=Path, default=None, help="output folder (required unless --list)")
    p.add_argument("--list", action="store_true", help="list suites, methods (with options) and metrics, and exit")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p.set_defaults(run=run)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def list_everything() -> str:
    from ..bench import SUITE_FORMS
    from ..bench.methods import METHODS, method_info, method_options
    from ..metrics import METRICS

    lines = [f"suites: {SUITE_FORMS}", "", "methods:"]
    for name in METHODS.names():
        info = method_info(name)
        opts = ", ".join(f"{k}={v!r}" for k, v in method_options(name).items())
        lines.append(f"  {name:18s} [{info['kind']}] {info['description']}" + (f"\n{'':21s}options: {opts}" if opts else ""))
    lines += ["", "metrics:"]
    for name in METRICS.names():
        cls = METRICS.get(name)
        arrow = "higher" if cls.higher_is_better else "lower"
        lines.append(f"  {name:14s} {cls.kind.replace('_', ' ')}, {cls.reference} reference, {arrow} is better")
    return "\n".join(lines)


def print_summary(result, metrics: list[str] | None, out: Path) -> None:
    """The summary table on stdout (the main metrics, or ``metrics``), then what could not be computed and why."""
    from ..bench.console import console_table, not_computed

    s = result.suite.settings
    print(f"\nBenchmark {s['suite']}: {len(result.suite)} photo(s); mean ± 95% CI, best in bold\n")
    print(console_table(result, metrics))
    missing = not_computed(result)
    if missing:
        print("\nNot computed here:")
        print("\n".join(f"- {line}" for line in missing))
    print(f"\nAll metrics, intervals and notes: {out / 'summary.md'} (table: summary.csv)")


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_everything())
        return 0
    if args.suite is None or args.out is None:
        raise ValueError("--suite and --out are required (or --list)")
    from ..bench import DEFAULT_METHODS, run_benchmark
    from ..bench.methods import parse_method_options

    methods = _split(args.methods) or list(DEFAULT_METHODS)
    result = run_benchmark(args.suite, methods, args.out, preset=args.preset, seed=args.seed,
                           checkpoints=args.checkpoints, device=args.device, metrics=_split(args.metrics),
                           max_side=args.max_side, max_images=args.max_images,
                           method_options=parse_method_options(args.options), weights_dir=args.weights_dir,
                           progress=not args.no_progress, severity=_split(args.severity),
                           log=lambda line: print(line, file=sys.stderr))
    print_summary(result, _split(args.metrics), args.out)
    ran = [r.name for r in result.runs if r.available]
    skipped = [r.name for r in result.runs if not r.available and not r.failed]
    failed = [r.name for r in result.runs if r.failed]
    print(f"bench: {len(result.suite)} photo(s), ran {', '.join(ran) or 'nothing'}"
          + (f"; unavailable: {', '.join(skipped)} (reasons in summary.md)" if skipped else "")
          + (f"; failed: {', '.join(failed)} (errors in summary.md)" if failed else "")
          + f"; results in {args.out}", file=sys.stderr)
    return 1 if failed else 0
