"""Ablation of the latent translation: each variant's runs folder on the same aged photos, side by side.

The photos are the benchmark suite's (``bench --suite SUITE --preset P --seed S``: same downscaling, same
per-photo seeds), so the numbers compare with the README's table. Each variant is ``NAME=RUNS[:MASK]``:

    MASK  none    stage 2 only, no mask (every latent cell valid)
          gt      stage 2 with the synthesizer's ground-truth damage mask (an oracle for the detector)
          detect  stages 1 + 2: the runs folder's scratch detector at its calibrated threshold, united with its
                  torn-piece detector when RUNS/torn exists (the default of ``ours`` when RUNS/scratch exists);
                  ``detect@T`` (``detect-nofill@T``) at scratch threshold T instead (``--torn-threshold``: the
                  torn-piece detector's, for every variant)

A mask is filled by Telea inpainting before the translation (``Restorer.mask_fill``, the pipeline's default);
``gt-nofill`` and ``detect-nofill`` leave it unfilled (the mask only steers the nonlocal block, as released).

Faces are not refined (stage 3 has its own benchmark). Besides PSNR / SSIM against the clean photo, every
variant also restores the clean photo itself (``clean_psnr``: the harm done to a photo that needs nothing;
with ``--clean-full`` also through every stage, faces included, as ``restore`` does: ``clean_full_psnr``).

    python benchmarks/ablation_translation.py --out results/ablation \\
        --variant ours=RUNS:detect --variant no-pn=RUNS_NO_PN:none ...
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import torch

MASKS = ("none", "gt", "detect", "gt-nofill", "detect-nofill")


def parse_variant(text: str) -> tuple[str, Path, str]:
    """``NAME=RUNS[:MASK[@T]]`` -> (name, runs, mask), the mask as ``detect@0.8`` or ``detect@0.8-nofill``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"variant {text!r} is not NAME=RUNS[:MASK]")
    name, rest = text.split("=", 1)
    runs, _, mask = rest.partition(":")
    mask, _, at = (mask or "none").partition("@")
    if mask not in MASKS:
        raise argparse.ArgumentTypeError(f"unknown mask {mask!r} in {text!r}; valid: {', '.join(MASKS)}")
    if at:
        try:
            float(at)
        except ValueError:
            raise argparse.ArgumentTypeError(f"threshold {at!r} in {text!r} is not a number") from None
        if not mask.startswith("detect"):
            raise argparse.ArgumentTypeError(f"a threshold (@T) goes with detect only, in {text!r}")
        mask = mask.replace("detect", f"detect@{at}")
    return name.strip(), Path(runs), mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", type=parse_variant, required=True,
                    help=f"NAME=RUNS[:{'|'.join(MASKS)}] (repeat)")
    ap.add_argument("--suite", default="clean:../shared/data/clean/kodak24", help="a bench suite spec")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--torn-threshold", type=float, default=None,
                    help="torn-piece detector threshold of the detect variants (default: each checkpoint's)")
    ap.add_argument("--torn-component-prob", type=float, default=None,
                    help="smallest mean probability of a kept torn-piece component (default: the pipeline's)")
    ap.add_argument("--guide-radius", type=int, default=None,
                    help="radius of the guided filter that ends the global stage, for every variant (0: off; "
                         "default: the pipeline's)")
    ap.add_argument("--guide-eps", type=float, default=None,
                    help="variance below which a guided-filter window counts as flat, for every variant "
                         "(default: the pipeline's)")
    ap.add_argument("--out", type=Path, required=True, help="folder for ablation.csv, ablation.json, data/")
    ap.add_argument("--clean-full", action="store_true",
                    help="also pass each clean photo through the whole restore pipeline (detection of the variant's "
                         "mask mode, faces included): clean_full_psnr")
    args = ap.parse_args()

    from oldphoto_bench.bench.suites import prepare_suite
    from oldphoto_bench.metrics import aggregate
    from oldphoto_bench.metrics.fidelity import psnr, ssim
    from oldphoto_bench.restore import Restorer

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    suite = prepare_suite(args.suite, args.out / "suite", args.preset, args.seed, max_images=args.max_images,
                          progress=False)
    rows: list[dict] = []
    t0 = time.perf_counter()
    photos = [(it.name, it.load_degraded(), it.load_clean(), it.load_mask()) for it in suite.items]
    base = {"psnr": [float(psnr(d, c)[0]) for _, d, c, _ in photos],
            "ssim": [float(ssim(d, c)[0]) for _, d, c, _ in photos]}
    rows.append({"variant": "input", "runs": "", "mask": "", **{k: statistics.fmean(v) for k, v in base.items()}})
    extra = {} if args.torn_component_prob is None else {"torn_component_prob": args.torn_component_prob}
    if args.guide_radius is not None:
        extra["guide_radius"] = args.guide_radius
    if args.guide_eps is not None:
        extra["guide_eps"] = args.guide_eps
    for name, runs, mode in args.variant:
        mask, _, nofill = mode.partition("-")
        mask, _, at = mask.partition("@")
        fill, threshold = "none" if nofill else "telea", float(at) if at else None
        restorer = Restorer(runs, with_scratch=mask == "detect", faces=False, mask_fill=fill, threshold=threshold,
                            torn_threshold=args.torn_threshold, **extra)
        per: dict[str, list[float]] = {"psnr": [], "ssim": [], "clean_psnr": [], "flagged": []}
        full = (Restorer(runs, with_scratch=mask == "detect", faces=True, mask_fill=fill, threshold=threshold,
                         torn_threshold=args.torn_threshold, **extra)
                if args.clean_full else None)
        if full is not None:
            per["clean_full_psnr"] = []
        for _, degraded, clean, gt in photos:
            if mask == "detect":
                res = restorer.restore(degraded)
                out, flagged = res.stages["global"], float(res.mask.mean())
            else:
                out = restorer.restore_global(degraded, gt if mask == "gt" else None)
                flagged = float(gt.mean()) if mask == "gt" else 0.0
            per["psnr"].append(float(psnr(out, clean)[0]))
            per["ssim"].append(float(ssim(out, clean)[0]))
            per["clean_psnr"].append(float(psnr(restorer.restore_global(clean), clean)[0]))
            per["flagged"].append(flagged)
            if full is not None:
                per["clean_full_psnr"].append(float(psnr(full.restore(clean).image, clean)[0]))
        row = {"variant": name, "runs": str(runs), "mask": mode, "torn_threshold": restorer.torn_threshold,
               "guide_radius": restorer.guide_radius, "guide_eps": restorer.guide_eps}
        for k, v in per.items():
            a = aggregate(v)
            row[k], row[f"{k}_ci95"] = a.mean, a.ci95
        row["gain_db"] = row["psnr"] - rows[0]["psnr"]
        rows.append(row)
        print(f"{name:>24}: PSNR {row['psnr']:.2f} ± {row['psnr_ci95']:.2f} dB ({row['gain_db']:+.2f} over the "
              f"input), SSIM {row['ssim']:.3f}, clean photo {row['clean_psnr']:.2f} dB, "
              f"masked {100 * row['flagged']:.1f}%  [{time.perf_counter() - t0:.0f} s]", flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out / "ablation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    (args.out / "ablation.json").write_text(json.dumps(
        {"suite": args.suite, "preset": args.preset, "seed": args.seed, "photos": len(photos), "rows": rows},
        indent=2) + "\n")


if __name__ == "__main__":
    main()
