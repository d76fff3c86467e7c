"""``oldphoto-bench train``: train one stage of the latent translation (VAE_A, VAE_B, the mapping)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = """Train one stage of the latent translation into RUNS/<STAGE>/.

Stages (run in this order):
  vae-a    VAE_A on old photos: synthetic ones X (made on the fly from --data with the recipe's
           degradation preset) and real ones R (--real), with the latent adversarial loss R vs X.
           Without --real it warns and trains on X alone (no latent adversarial loss).
  vae-b    VAE_B on clean crops Y of --data.
  mapping  the latent mapping A -> B with the partial nonlocal block; reads RUNS/vae-a/last.pt and
           RUNS/vae-b/last.pt.
For the benchmark (oldphoto-bench bench): `baseline pix2pix` / `baseline unet` train a learned baseline
on the same synthetic pairs and budget into RUNS/baseline-NAME/; `mapping-no-pn` trains the mapping
without the partial nonlocal block into RUNS/mapping-no-pn/ (the ours-no-pn ablation).

Recipes (--config): smoke (seconds; tests), tiny (64 px crops, narrow nets; the shipped vae-a, vae-b and
mapping took 20, 21 and 36 minutes on 2 CPU cores shared with other jobs, every shipped stage's time is in
`oldphoto-bench ship --list`), paper (256 px crops, the released batch sizes and epochs, Adam 2e-4,
betas 0.5/0.999), or a YAML file shaped like them. --set a.b=value changes any key
(e.g. --set schedule.steps=100 --set model.latent_adversarial=false); an unknown key is an error.

Data: --data is a data source: a folder, an image file, hf:<id or folder>[:split], or a comma list.
Test sets (Kodak24, FFHQ-10, the embedded scikit-image photos) are refused, except that the default
--data embedded is allowed with --config smoke, for smoke tests only. Developers with the shared data:
  --data ../shared/data/clean/bsds500,../shared/data/clean/cbsd68,../shared/data/clean/mcmaster,../shared/data/clean/set14
  --real ../shared/data/old/bopbtl/old

Each stage writes last.pt (atomically, every schedule.save_every steps and at the end), config.yaml,
manifest.json, log.csv, run.log and TensorBoard events (tb/). An existing run is never overwritten:
--resume continues it exactly where its last checkpoint stopped, --overwrite starts it again.
Multi-GPU: torchrun --nproc_per_node K -m oldphoto_bench.cli train STAGE --device cuda ...
(data.batch_size is per process; only rank 0 writes files)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import TRAIN_STAGES, add_device_argument, train_recipes

    p = sub.add_parser("train", help="train the VAEs and the latent mapping", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=TRAIN_STAGES, metavar="STAGE",
                   help=f"stage to train: {', '.join(TRAIN_STAGES)}")
    p.add_argument("stage_args", nargs="*", metavar="ARG", help=argparse.SUPPRESS)
    p.add_argument("--config", required=True, metavar="NAME|PATH",
                   help=f"recipe: {', '.join(train_recipes())}, or a YAML file")
    p.add_argument("--out", type=Path, default=Path("runs"), metavar="RUNS", help="runs folder (default: runs)")
    p.add_argument("--data", default="embedded", metavar="SOURCE",
                   help="clean photos (default: embedded, allowed only with --config smoke)")
    p.add_argument("--real", default=None, metavar="DIR", help="folder of real old photos R (vae-a)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set data.batch_size=8")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue RUNS/STAGE from its last.pt")
    mode.add_argument("--overwrite", action="store_true", help="start RUNS/STAGE again, replacing its files")
    add_device_argument(p)
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..train import train_stage

    command = " ".join(["oldphoto-bench train", args.stage, *args.stage_args, "--config", str(args.config),
                        "--out", str(args.out), "--data", args.data, *(["--real", args.real] if args.real else []),
                        *[f"--set {o}" for o in args.overrides], *(["--resume"] if args.resume else []),
                        *(["--overwrite"] if args.overwrite else []), "--device", args.device])
    path = train_stage(args.stage, args.config, runs=args.out, data=args.data, real=args.real,
                       device=args.device, overrides=args.overrides, resume=args.resume,
                       overwrite=args.overwrite, progress=not args.no_progress,
                       stage_args=args.stage_args, command=command)
    from ..train.ddp import dist_from_env

    if dist_from_env().is_main:
        print(f"{args.stage}: checkpoint {path}", file=sys.stderr)
    return 0
