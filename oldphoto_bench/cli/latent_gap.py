"""``oldphoto-bench latent-gap``: how far apart R, X and Y lie in VAE_A's latent space."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = """Measure the latent domain gap between real old photos R, synthetic old photos X and clean photos Y.

All three are encoded with VAE_A's encoder from --checkpoints (RUNS/vae-a/last.pt; default: the
checkpoints shipped with the package, oldphoto_bench/pretrained/tiny, as `oldphoto-bench restore`, `bench`
and `demo`); X is synthesised from the clean --data photos with --preset. Each image gives --cells latent cells; the Fréchet distance
and the MMD (RBF kernel, median bandwidth) between the domains' cells are printed as a table and written
to OUT/latent_gap.json ({"pairs": {"R-X": {"frechet": ..., "mmd": ...}, "X-Y": ..., "R-Y": ...}}),
with a PCA and t-SNE plot coloured by domain in OUT/latent_embedding.png. Progress bars on stderr show the
loading, ageing and encoding (--no-progress hides them); a line announces the t-SNE, the longest step.

Measured on a 2-core machine shared with other jobs, shipped checkpoints, the 12 real old photos of
../shared/data/old/bopbtl and the 24 Kodak photos: 42 s in all (about 5 s importing torch, 2 s loading,
ageing and encoding, then the Fréchet distances, MMD and the t-SNE)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import add_device_argument

    p = sub.add_parser("latent-gap", help="measure the R/X/Y latent domain gap of a trained VAE_A",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", type=Path, default=None, metavar="RUNS",
                   help="runs folder holding vae-a/last.pt (default: the checkpoints shipped with the package, "
                        "oldphoto_bench/pretrained/tiny)")
    p.add_argument("--real", required=True, help="folder of real old photos (R)")
    p.add_argument("--data", default="embedded", help="clean photos for X and Y: a data source (default: embedded)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--preset", default="paper", help="preset that synthesises X from the clean photos (default: paper)")
    p.add_argument("--size", type=int, default=128, help="images are resized and centre-cropped to this (default: 128)")
    p.add_argument("--cells", type=int, default=64, help="latent cells drawn per image (default: 64)")
    p.add_argument("--max-images", type=int, default=200, help="at most this many images per domain (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for X's degradations and the cell draws (default: 0)")
    add_device_argument(p)
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import open_source
    from ..latent_gap import encode_domains, format_table, latent_gap, plot_embedding
    from ..provenance import atomic_write_bytes, write_manifest
    from ..restore import default_checkpoints
    from ..train.artifacts import load_vae

    checkpoints = args.checkpoints if args.checkpoints is not None else default_checkpoints()
    print(f"latent-gap: encoder of {checkpoints / 'vae-a'}", file=sys.stderr)
    vae = load_vae(checkpoints, "vae-a", device=args.device)
    feats = encode_domains(vae, open_source(args.real), open_source(args.data), preset=args.preset,
                           size=args.size, cells_per_image=args.cells, max_images=args.max_images,
                           seed=args.seed, device=args.device, progress=not args.no_progress)
    result = latent_gap(feats, seed=args.seed)
    result["settings"] = {"checkpoints": str(checkpoints), "real": args.real, "data": args.data,
                          "preset": args.preset, "size": args.size, "cells_per_image": args.cells,
                          "seed": args.seed, "encoder": "vae-a posterior mean",
                          "mmd": "unbiased MMD^2, RBF kernel, median-heuristic bandwidth, <=1000 cells per domain"}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "latent_gap.json", (json.dumps(result, indent=2) + "\n").encode())
    print(f"latent-gap: PCA and t-SNE of the latent cells -> {args.out / 'latent_embedding.png'}", file=sys.stderr)
    plot_embedding(feats, args.out / "latent_embedding.png", seed=args.seed)
    write_manifest(args.out / "manifest.json", seed=args.seed, config=result["settings"])
    print(format_table(result))
    print(f"wrote {args.out / 'latent_gap.json'} and {args.out / 'latent_embedding.png'}", file=sys.stderr)
    return 0
