"""The latent domain gap before and after alignment (paper Sec. 3.1, Fig. 3), for notebook 02.

Encodes real old photos R (the shared ``old/bopbtl`` prints), the embedded scikit-image photos aged by the
``paper`` preset X and the same photos clean Y with three encoders (:func:`oldphoto_bench.teaching.
alignment_encoders`: VAE_B's encoder, VAE_A without the latent adversarial loss, the shipped VAE_A), and
writes to ``--out``:

    gaps.json        Fréchet distance and MMD^2 of R-X, X-Y, R-Y per encoder, with the settings
    real_cells.npz   R's latent cells per encoder (float32), so notebook 02 shows R without the shared data
    gap.png          the 2-D comparison (:func:`oldphoto_bench.teaching.plot_gap_comparison`)

    python benchmarks/latent_gap_alignment.py --out results/latent_translation/alignment
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", default=None, help="real old photos (default: old/bopbtl/old and old_w_scratch "
                                                 "under the shared data root)")
    ap.add_argument("--data", default="embedded", help="clean photos Y (aged into X); default: embedded")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cells", type=int, default=64, help="latent cells drawn per photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/latent_translation/alignment")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import torch

    from oldphoto_bench.data import OLD_PHOTO_SETS, open_source, shared_set_path
    from oldphoto_bench.teaching import alignment_encoders, compare_encoders, plot_gap_comparison

    torch.manual_seed(args.seed)
    real_spec = args.real or ",".join(str(shared_set_path(s)) for s in OLD_PHOTO_SETS)
    features, gaps = compare_encoders(alignment_encoders(), open_source(real_spec), open_source(args.data),
                                      size=args.size, cells_per_image=args.cells, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "real_cells.npz", **{k: v["R"].astype(np.float32) for k, v in features.items()})
    settings = {"real": args.real or list(OLD_PHOTO_SETS), "data": args.data, "size": args.size,
                "cells_per_image": args.cells, "seed": args.seed, "preset": "paper",
                "command": "python benchmarks/latent_gap_alignment.py --out " + args.out}
    (out / "gaps.json").write_text(json.dumps({"settings": settings, "gaps": gaps}, indent=1) + "\n")
    plot_gap_comparison(features, gaps, seed=args.seed).savefig(out / "gap.png", dpi=72)
    for name, g in gaps.items():
        print(name, {p: {k: round(v, 4) for k, v in d.items()} for p, d in g["pairs"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
