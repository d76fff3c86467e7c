"""How much the scratch detector flags where nothing is damaged, and how well it finds synthetic damage.

Runs stage 1 of the restore pipeline exactly as ``restore --with-scratch`` does (whole photos, tiled, the
checkpoint's calibrated threshold unless --threshold, the pipeline's dilation; the torn-piece detector's mask
united with it when the runs folder has ``torn/last.pt``, unless --no-torn) on:

* ``--clean``: undamaged photos (Kodak24 by default): every flagged pixel is a false positive;
* ``--old``: real old prints without scratches (``old/bopbtl/old``): flagged share per print;
* ``--synthetic``: clean photos aged with each ``--presets`` (seed ``derive_seed(--seed, i)``): pixel
  precision, recall, F1 and IoU pooled over the photos against the synthesizer's ground-truth masks.

    python benchmarks/eval_scratch_detector.py --checkpoints oldphoto_bench/pretrained/tiny --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _flagged(restorer, image: torch.Tensor) -> tuple[float, torch.Tensor]:
    mask = restorer.detect_mask(image)  # scratches united with torn pieces (when RUNS/torn exists), as restore
    return float(mask.mean()), mask


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "max": max(values),
            "min": min(values), "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", required=True, type=Path, help="runs folder with scratch/last.pt (and the VAEs)")
    ap.add_argument("--clean", default=str(SHARED / "clean" / "kodak24"), help="undamaged photos (a data source)")
    ap.add_argument("--old", default=str(SHARED / "old" / "bopbtl" / "old"), help="real prints without scratches")
    ap.add_argument("--synthetic", default=str(SHARED / "clean" / "kodak24"), help="clean photos to age")
    ap.add_argument("--presets", default="paper,scratch", help="comma-separated presets for --synthetic")
    ap.add_argument("--seed", type=int, default=0, help="base seed of the synthetic damage (default: 0)")
    ap.add_argument("--threshold", type=float, default=None, help="override the checkpoint's threshold")
    ap.add_argument("--dilation", type=int, default=None, help="override the pipeline's mask dilation (pixels)")
    ap.add_argument("--min-component", type=int, default=None,
                    help="override the pipeline's smallest kept detection (pixels)")
    ap.add_argument("--torn-threshold", type=float, default=None, help="override the torn-piece detector's threshold")
    ap.add_argument("--no-torn", action="store_true", help="leave out the torn-piece detector (scratch mask only)")
    ap.add_argument("--max-side", type=int, default=512, help="downscale so max(H, W) <= this (bench's default)")
    ap.add_argument("--json", type=Path, default=None, help="write per-photo and summary figures here")
    args = ap.parse_args()

    from oldphoto_bench.data import open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.imageio import resize_max_side
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.seeding import derive_seed
    from oldphoto_bench.segmentation_metrics import confusion

    torch.set_num_threads(1)
    from oldphoto_bench.restore.restorer import MASK_DILATION

    restorer = Restorer(args.checkpoints, with_scratch=True, faces=False, threshold=args.threshold,
                        dilation=MASK_DILATION if args.dilation is None else args.dilation, torn=not args.no_torn,
                        torn_threshold=args.torn_threshold,
                        **({} if args.min_component is None else {"min_component": args.min_component}))
    t0 = time.perf_counter()
    out: dict = {"checkpoints": str(args.checkpoints), "threshold": restorer.threshold,
                 "torn_threshold": restorer.torn_threshold, "min_component": restorer.min_component,
                 "dilation": restorer.dilation, "max_side": args.max_side, "per_photo": {}}

    def photos(spec: str):
        src = open_source(spec)
        for i in range(len(src)):
            s = src[i]
            yield i, s.name, resize_max_side(s.image, args.max_side)

    for key, spec in (("clean", args.clean), ("old", args.old)):
        if not spec:
            continue
        rows = {name: _flagged(restorer, image)[0] for _, name, image in photos(spec)}
        out["per_photo"][key] = rows
        out[key] = {"source": spec, "flagged": _spread(list(rows.values()))}
        print(f"{key:>9}: flagged {100 * out[key]['flagged']['mean']:.2f}% of pixels on average "
              f"(median {100 * out[key]['flagged']['median']:.2f}%, max {100 * out[key]['flagged']['max']:.2f}%, "
              f"{len(rows)} photos)", flush=True)
    for preset in [p for p in args.presets.split(",") if p]:
        synth, total, flagged = Synthesizer(preset), None, []
        for i, _, image in photos(args.synthetic):
            aged = synth(image, seed=derive_seed(args.seed, i))
            share, mask = _flagged(restorer, aged.image)
            c = confusion(mask > 0.5, aged.mask)
            total = c if total is None else total + c
            flagged.append(share)
        out[f"synthetic_{preset}"] = {"source": args.synthetic, "preset": preset, "f1": total.f1,
                                      "precision": total.precision, "recall": total.recall, "iou": total.iou,
                                      "flagged": _spread(flagged)}
        print(f"{preset:>9}: F1 {total.f1:.3f}, precision {total.precision:.3f}, recall {total.recall:.3f}, "
              f"IoU {total.iou:.3f} on {len(flagged)} aged photos", flush=True)
    out["seconds"] = time.perf_counter() - t0
    torn = "none" if restorer.torn_threshold is None else f"{restorer.torn_threshold:.2f}"
    print(f"threshold {restorer.threshold:.2f}, torn-piece threshold {torn}, dilation {restorer.dilation} px "
          f"({out['seconds']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
