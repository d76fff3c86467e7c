"""``oldphoto-bench demo``: the main job on the embedded photos (nothing trained, nothing downloaded)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """See the whole method work on real pictures in a minute or two on a CPU, with no training and no
download (measured with the shipped checkpoints: 50 s on 2 idle CPU cores, 1 min 45 s to 2 min 25 s on 2
cores busy with other jobs): the 8 photos that ship inside scikit-image are aged with --preset and --seed, restored
by our pipeline with every stage its checkpoints have (scratch detection, global restoration in the
latent space, face refinement) and by the classical baselines, and scored against the clean originals.

It runs the benchmark on the embedded suite, exactly as
  oldphoto-bench bench --suite embedded --out OUT   (same methods, preset, seed and --max-side)
so both commands give the same numbers, prints the summary table (the main metrics; all of them are in
summary.md) with every metric it could not compute here and why (e.g. weights not fetched: see
`oldphoto-bench weights`), and says plainly at the end if our method could not run (and why).

Writes into --out:
  contact_sheet.png   one row per photo: input (aged) | ours | reference
  stages.png          one photo through every stage: input, scratch mask, global restoration,
                      refined faces (boxed), reference
  summary.csv         one row per method, one column per metric (and summary.md: mean ± 95% CI, best in
                      bold, reasons; summary.json; per_image.csv)
  figures/            bar chart per metric, metric against degradation severity, image grid of crops
  manifest.json       the benchmark's record (versions, seeds, settings, metric contracts)
  demo_manifest.json  the demo's settings, seed, versions, git revision and where every checkpoint comes
                      from (path, size, sha256, training record)
  data/, cache/       the aged photos and every method's outputs, cached: a rerun computes nothing new
  ageing/             with --ageing-sheets: clean | aged | mask for every shipped preset
A folder prepared with other settings, or holding files the demo did not write, is refused (choose
another --out). Exit status 1 when our method did not run (the rest is still written)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import BENCH_METHODS, add_device_argument

    p = sub.add_parser("demo", help="age, restore and benchmark the embedded photos (the main job)", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("oldphoto_demo"), help="output folder (default: ./oldphoto_demo)")
    p.add_argument("--checkpoints", type=Path, default=None, metavar="RUNS",
                   help="runs folder with our trained networks (default: the checkpoints shipped with the "
                        "package, as `oldphoto-bench restore`)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the ageing and the methods (default: 0)")
    p.add_argument("--preset", default="paper", help="degradation preset the photos are aged with (default: paper)")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="use only the first N photos (of 8)")
    p.add_argument("--max-side", type=int, default=512, metavar="PX",
                   help="downscale larger photos to this side before ageing (default: 512, as bench; 0: full size)")
    p.add_argument("--methods", default=None, metavar="A,B,...",
                   help=f"benchmark methods (default: {','.join(BENCH_METHODS)}; see `oldphoto-bench bench --list`)")
    add_device_argument(p)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: 1, the fastest on 2 shared cores; 0: torch's default)")
    p.add_argument("--ageing-sheets", action="store_true",
                   help="also write ageing/contact_<preset>.png for every shipped preset")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.console import not_computed
    from ..demo import run_demo

    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    result = run_demo(args.out, checkpoints=args.checkpoints, seed=args.seed, preset=args.preset,
                      max_images=args.max_images, max_side=args.max_side, methods=methods, device=args.device,
                      progress=not args.no_progress, ageing=args.ageing_sheets, threads=args.threads or None,
                      log=lambda line: print(line, file=sys.stderr))
    s = result.bench.suite.settings
    print(f"\nDemo: {len(result.bench.suite)} embedded photo(s) aged with preset {s['preset']}, seed {s['seed']}, "
          f"max side {s['max_side']}, restored and scored in {result.seconds:.0f} s\n")
    print(result.table)
    missing = not_computed(result.bench)
    if missing:
        print("\nNot computed here:")
        print("\n".join(f"- {line}" for line in missing))
    print(f"\nAll metrics, confidence intervals and notes: {args.out / 'summary.md'} (table: summary.csv)")
    shown = [k for k in ("contact_sheet", "stages") if k in result.files]
    print("Pictures: " + ", ".join(str(result.files[k]) for k in shown) + f", figures in {args.out / 'figures'}")
    if result.ours is not None and not result.ours.available:
        print(f"\nOur method did not run: {result.ours_reason}\n(The other methods ran and everything else was "
              f"written; the ours column of {args.out / 'contact_sheet.png'} is gray. Point --checkpoints at a "
              "runs folder that holds the checkpoints.)")
        return 1
    return 0
