"""PSNR / SSIM of the latent translation (encode with VAE_A -> map -> decode with VAE_B) on aged test photos.

Clean test photos (Kodak24 by default: never trained on) are aged with a preset, one seed per image
(derive_seed(--seed, i)); each degraded photo goes through stage 2 of the pipeline (no scratch detection,
no faces), with the partial nonlocal block given either no mask or the synthesizer's ground-truth mask.
Prints the mean PSNR / SSIM (RGB, data range 1, SSIM as Wang et al.) of the degraded input and of each
restoration against the clean photo, and writes a JSON with per-image values when --json is given.
``clean`` is the undamaged photo itself through the same stage (how much the translation harms a photo that
needs nothing: a good restorer leaves it near VAE_B's reconstruction quality).

    python benchmarks/eval_latent_translation.py --checkpoints RUNS --data ../shared/data/clean/kodak24
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", required=True, type=Path, help="runs folder with vae-a, vae-b, mapping")
    ap.add_argument("--data", default="../shared/data/clean/kodak24", help="clean test photos (a data source)")
    ap.add_argument("--preset", default="paper", help="degradation preset (default: paper)")
    ap.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    ap.add_argument("--max-images", type=int, default=None, help="use only the first N photos")
    ap.add_argument("--json", type=Path, default=None, help="write per-image and mean figures here")
    ap.add_argument("--no-clean", action="store_true", help="skip the undamaged photo through the translation")
    args = ap.parse_args()

    from oldphoto_bench.data import open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.metrics import aggregate
    from oldphoto_bench.metrics.fidelity import psnr, ssim
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.seeding import derive_seed

    torch.set_num_threads(1)
    src = open_source(args.data)
    n = len(src) if args.max_images is None else min(len(src), args.max_images)
    synth = Synthesizer(args.preset)
    restorer = Restorer(args.checkpoints, with_scratch=False, faces=False)
    rows = []
    t0 = time.perf_counter()
    for i in range(n):
        s = src[i]
        deg = synth(s.image, derive_seed(args.seed, i))
        outs = {"input": deg.image,
                "ours (no mask)": restorer.restore_global(deg.image),
                "ours (gt mask)": restorer.restore_global(deg.image, deg.mask)}
        if not args.no_clean:
            outs["clean"] = restorer.restore_global(s.image)
        row = {"image": s.name}
        for k, v in outs.items():
            row[f"{k} psnr"] = float(psnr(v, s.image)[0])
            row[f"{k} ssim"] = float(ssim(v, s.image)[0])
        rows.append(row)
        print(f"{i + 1}/{n} {s.name}: " + ", ".join(f"{k}={v:.3f}" for k, v in row.items() if k != "image"),
              flush=True)
    keys = [k for k in rows[0] if k != "image"]
    summary = {}
    for k in keys:
        a = aggregate([r[k] for r in rows])
        summary[k] = {"mean": a.mean, "ci95": a.ci95, "n": a.n}
    print(f"\n{n} images of {args.data}, preset {args.preset}, seed {args.seed} "
          f"({time.perf_counter() - t0:.0f} s)")
    for k, v in summary.items():
        print(f"  {k:<22} {v['mean']:8.4f} ± {v['ci95']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": vars(args) | {"checkpoints": str(args.checkpoints),
                                                                   "json": str(args.json)},
                                         "summary": summary, "per_image": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
