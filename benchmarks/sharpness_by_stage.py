"""Where the restore pipeline loses sharpness on real old prints: the sharpness ratio after each stage.

For every print under ``--data`` (loaded as ``publish_results.py``'s ``old`` step loads them, at full size),
the mean Sobel gradient magnitude of the luma (``oldphoto_bench.metrics.gradient_sharpness``, the measure of
``results/old_photos/``) over the input's, for:

* ``colour``: the global colour correction alone (``RUNS/colour``);
* ``vae_b``: VAE_B's own reconstruction of the colour-corrected print, ``G_B(mu_B(C(x)))``: the most
  detail the clean decoder keeps, whatever the mapping does;
* ``no_mapping``: ``G_B(mu_A(C(x)))``, the old-photo encoder straight into the clean decoder;
* ``decoded``: ``G_B(T(mu_A(C(x))))``, the translation's decoded output (no mask, no fill, no faces);
* ``global``: the whole global stage, that output re-fitted onto ``C(x)`` by the guided filter
  (:mod:`oldphoto_bench.restore.guided`).

    python benchmarks/sharpness_by_stage.py --checkpoints oldphoto_bench/pretrained/tiny --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
STAGES = ("colour", "vae_b", "no_mapping", "decoded", "global")


@torch.no_grad()
def stage_outputs(restorer, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """``image`` (1, 3, H, W) -> ``{stage: (1, 3, H, W)}`` for :data:`STAGES` (see the module docstring)."""
    from oldphoto_bench.models import pad_to_multiple, unpad

    corrected = restorer.correct_colour(image)
    x, pad = pad_to_multiple(corrected, restorer.vae_a.multiple)
    z_a = restorer.vae_a.encode(x)[0]
    return {"colour": corrected,
            "vae_b": unpad(restorer.vae_b.decode(restorer.vae_b.encode(x)[0]), pad),
            "no_mapping": unpad(restorer.vae_b.decode(z_a), pad),
            "decoded": unpad(restorer.vae_b.decode(restorer.mapping(z_a)), pad),
            "global": restorer.restore_global(image)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", required=True, type=Path, help="runs folder (vae-a, vae-b, mapping, colour)")
    ap.add_argument("--data", type=Path, default=SHARED / "old", help="folder of real prints, searched recursively")
    ap.add_argument("--json", type=Path, default=None, help="write per-print and median ratios here")
    args = ap.parse_args()

    from oldphoto_bench import imageio
    from oldphoto_bench.data.sources import scan_images
    from oldphoto_bench.metrics import gradient_sharpness
    from oldphoto_bench.restore import Restorer

    torch.set_num_threads(1)
    paths = scan_images(args.data)
    if not paths:
        ap.error(f"no image files under {args.data}")
    restorer = Restorer(args.checkpoints, with_scratch=False, faces=False)
    rows = {}
    for path in paths:
        image, _ = imageio.load_image(path)
        base = float(gradient_sharpness(image)[0])
        name = path.relative_to(args.data).as_posix()
        rows[name] = {k: float(gradient_sharpness(v)[0]) / base for k, v in stage_outputs(restorer, image).items()}
        print(name, " ".join(f"{k} {v:.2f}" for k, v in rows[name].items()), flush=True)
    medians = {k: statistics.median(r[k] for r in rows.values()) for k in STAGES}
    print("median over", len(rows), "prints:", " ".join(f"{k} {v:.3f}" for k, v in medians.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"checkpoints": str(args.checkpoints), "data": str(args.data),
                                         "per_print": rows, "median": medians}, indent=2) + "\n")


if __name__ == "__main__":
    main()
