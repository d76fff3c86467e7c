"""``oldphoto-bench ship``: export trained runs into the package, list them, or retrain them all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Ship trained checkpoints inside the package (oldphoto_bench/pretrained/tiny): the default
--checkpoints of `oldphoto-bench restore`, `bench` and `demo`.

  oldphoto-bench ship --list                  what is shipped: stage, steps, size, git revision,
                                              training time, sha256 check, training data
  oldphoto-bench ship RUNS                    export every stage trained in RUNS into the package
  oldphoto-bench ship --retrain runs/tiny     THE retrain command: train every shipped stage with
                                              --config tiny on the shared training sets into
                                              runs/tiny, then export them (the stages' recorded times
                                              add up to about 5 h 53 min on 2 busy CPU cores; with
                                              --jobs 2 about 2 h 58 min, estimated from them); --dry-run
                                              prints the commands only

Export: each RUNS/<stage>/last.pt is stripped to what inference needs (stage, config, network specs and
float32 weights of the inference networks: no discriminators, optimizers or data-stream state) and
written with a provenance.json (training data and image counts, resolved config, seed, command, steps,
training time, git revision, versions, sha256 and size). Refused, with nothing written: a stage trained
on a test set (Kodak24, FFHQ-10, the embedded photos), weights that do not load, or a total over
--max-mb. Files are written atomically.

Retrain: stages vae-b, vae-a, colour, mapping, mapping-no-pn, scratch, torn, face, baseline-pix2pix,
baseline-unet
(--stages picks some). Each `oldphoto-bench train ...` command is printed before it runs. --jobs 2 trains
two stages at once (vae-a after vae-b, the mappings after both VAEs and the colour stage, the longest
remaining chain first), so that both cores of a 2-core machine are busy. A finished
stage in RUNS is skipped (--force retrains it), an interrupted one resumed. Data: --data-root (default:
the shared data root, $OLDPHOTO_SHARED_DATA or ../shared/data next to the checkout) holding
clean/{bsds500,cbsd68,mcmaster,set14}, old/bopbtl/{old,old_w_scratch} and faces/deepface."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..pretrained import PRETRAINED_DIR
    from .choices import SHIP_MAX_MB as DEFAULT_MAX_MB
    from .choices import SHIPPED_RECIPE as RECIPE
    from .choices import SHIPPED_STAGES as STAGE_NAMES
    from .choices import add_device_argument

    p = sub.add_parser("ship", help="ship trained checkpoints inside the package (export, --list, --retrain)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="?", type=Path, default=None, metavar="RUNS",
                   help="runs folder to export (with --retrain: to train into, e.g. runs/tiny)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="list the shipped checkpoints of --dest and exit")
    mode.add_argument("--retrain", action="store_true",
                      help=f"train every stage with --config {RECIPE} into RUNS, then export")
    p.add_argument("--dest", type=Path, default=PRETRAINED_DIR, metavar="DIR",
                   help="shipped folder (default: the package's, oldphoto_bench/pretrained/tiny)")
    p.add_argument("--stages", default=None, metavar="A,B,...",
                   help=f"stages (default: all present in RUNS; with --retrain all of {', '.join(STAGE_NAMES)})")
    p.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB, metavar="MB",
                   help=f"refuse when the shipped folder would exceed this many MB (10^6 bytes; default {DEFAULT_MAX_MB:g})")
    g = p.add_argument_group("--retrain options")
    g.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="folder holding clean/, old/ and faces/ (default: the shared data root)")
    g.add_argument("--force", action="store_true", help="retrain stages whose checkpoint exists in RUNS")
    g.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N stages at once, each after the stages it needs (default 1; 2 on a 2-core "
                        "machine: every stage trains on one thread); each one's output goes to RUNS/retrain-logs/")
    g.add_argument("--config", default=RECIPE, metavar="NAME|PATH",
                   help=f"training recipe (default: {RECIPE}, the shipped one; others for testing)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every train command (repeatable)")
    add_device_argument(g, "training device")
    g.add_argument("--no-progress", action="store_true", help="no progress bars while training")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..pretrained import RETRAIN_COMMAND
    from ..pretrained.export import format_listing, list_shipped, ship_runs
    from .choices import SHIPPED_RECIPE as RECIPE

    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if args.list:
        entries = list_shipped(args.dest)
        if not entries:
            print(f"nothing shipped in {args.dest}; recreate it with `{RETRAIN_COMMAND}`")
            return 0
        print(f"shipped checkpoints in {args.dest}:")
        print(format_listing(entries))
        return 1 if any(e["sha256_ok"] is False for e in entries) else 0
    if args.runs is None:
        raise ValueError("RUNS is required (or --list); e.g. `oldphoto-bench ship runs/tiny` or "
                         f"`{RETRAIN_COMMAND}`")
    if args.retrain:
        from ..pretrained.retrain import retrain

        retrain(args.runs, args.data_root, args.stages, force=args.force, dry_run=args.dry_run, dest=args.dest,
                max_mb=args.max_mb, config=args.config, overrides=args.overrides, device=args.device,
                progress=not args.no_progress, log=log, jobs=args.jobs)
        return 0
    used = [f for f in ("data_root", "force", "dry_run", "overrides", "no_progress") if getattr(args, f)]
    if used or args.config != RECIPE or args.device != "cpu" or args.jobs != 1:
        raise ValueError("--data-root, --force, --dry-run, --config, --set, --device, --jobs and --no-progress "
                         "go with --retrain")
    ship_runs(args.runs, args.dest, args.stages, args.max_mb, log=log)
    return 0
