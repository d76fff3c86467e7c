"""How much the scratch detector flags where nothing is damaged, and how well it finds synthetic damage.

Runs stage 1 of the restore pipeline exactly as ``restore --with-scratch`` does (whole photos, tiled, the
checkpoint's calibrated threshold unless --threshold, the pipeline's dilation; the torn-piece detector's mask
united with it when the runs folder has ``torn/last.pt``, unless --no-torn) on:

* ``--clean``: undamaged photos (Kodak24 by default): every flagged pixel is a false positive;
* ``--old``: real old prints without scratches (``old/bopbtl/old``): flagged share per print;
* ``--synthetic``: clean photos aged with each ``--presets`` (seed ``derive_seed(--seed, i)``): pixel
  precision, recall, F1 and IoU pooled over the photos against the synthesizer's ground-truth masks.

    python benchmarks/eval_scratch_detector.py --checkpoints oldphoto_bench/pretrained/tiny --json out.json

``--thresholds 0.96,0.93,0.9`` scores several scratch thresholds from one pass of the detectors per photo
(a scan costs about what one threshold does); choose on photos that are not a test set (e.g. McMaster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def masks_at(damage, image: torch.Tensor, thresholds: list[float]) -> list[torch.Tensor]:
    """Stage 1's mask of ``image`` at each scratch threshold, the detectors run once: the scratch mask of
    :meth:`DamageDetector.mask_from_probability` at threshold ``t`` united with the torn-piece mask, as
    ``restore --with-scratch`` does at its threshold. ``damage``: a :class:`DamageDetector`."""
    found = damage(image)
    prob, torn = found.stages["scratch_probability"], found.stages.get("torn_probability")
    torn_mask = damage.torn_mask(torn) if torn is not None else None
    masks = [damage.mask_from_probability(prob, t) for t in thresholds]
    return masks if torn_mask is None else [torch.maximum(m, torn_mask) for m in masks]


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
    ap.add_argument("--thresholds", default=None,
                    help="comma-separated scratch thresholds scored from one detector pass per photo (a scan; "
                         "the JSON gets by_threshold, its top level is the first one's)")
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
    thresholds = ([float(t) for t in args.thresholds.split(",") if t] if args.thresholds
                  else [restorer.threshold])
    if not thresholds or any(not 0.0 <= t <= 1.0 for t in thresholds):
        ap.error(f"--thresholds must be probabilities in [0, 1], got {args.thresholds!r}")
    t0 = time.perf_counter()
    out: dict = {"checkpoints": str(args.checkpoints), "threshold": restorer.threshold,
                 "torn_threshold": restorer.torn_threshold, "min_component": restorer.min_component,
                 "dilation": restorer.dilation, "max_side": args.max_side, "per_photo": {}}

    def photos(spec: str):
        src = open_source(spec)
        for i in range(len(src)):
            s = src[i]
            yield i, s.name, resize_max_side(s.image, args.max_side)

    results: dict[float, dict] = {t: {"per_photo": {}} for t in thresholds}
    for key, spec in (("clean", args.clean), ("old", args.old)):
        if not spec:
            continue
        rows: dict[float, dict[str, float]] = {t: {} for t in thresholds}
        for _, name, image in photos(spec):
            for t, mask in zip(thresholds, masks_at(restorer.damage, image, thresholds), strict=True):
                rows[t][name] = float(mask.mean())
        for t in thresholds:
            results[t]["per_photo"][key] = rows[t]
            results[t][key] = {"source": spec, "flagged": _spread(list(rows[t].values()))}
            f = results[t][key]["flagged"]
            print(f"{key:>9} @ {t:.2f}: flagged {100 * f['mean']:.2f}% of pixels on average (median "
                  f"{100 * f['median']:.2f}%, max {100 * f['max']:.2f}%, {len(rows[t])} photos)", flush=True)
    for preset in [p for p in args.presets.split(",") if p]:
        synth = Synthesizer(preset)
        total: dict[float, object] = {t: None for t in thresholds}
        flagged: dict[float, list[float]] = {t: [] for t in thresholds}
        for i, _, image in photos(args.synthetic):
            aged = synth(image, seed=derive_seed(args.seed, i))
            for t, mask in zip(thresholds, masks_at(restorer.damage, aged.image, thresholds), strict=True):
                c = confusion(mask > 0.5, aged.mask)
                total[t] = c if total[t] is None else total[t] + c
                flagged[t].append(float(mask.mean()))
        for t in thresholds:
            c = total[t]
            results[t][f"synthetic_{preset}"] = {"source": args.synthetic, "preset": preset, "f1": c.f1,
                                                 "precision": c.precision, "recall": c.recall, "iou": c.iou,
                                                 "flagged": _spread(flagged[t])}
            print(f"{preset:>9} @ {t:.2f}: F1 {c.f1:.3f}, precision {c.precision:.3f}, recall {c.recall:.3f}, "
                  f"IoU {c.iou:.3f} on {len(flagged[t])} aged photos", flush=True)
    out.update(results[thresholds[0]])  # the first threshold's figures at the top, as with one threshold
    out["threshold"] = thresholds[0]
    if len(thresholds) > 1:
        out["by_threshold"] = {f"{t:g}": results[t] for t in thresholds}
    out["seconds"] = time.perf_counter() - t0
    torn = "none" if restorer.torn_threshold is None else f"{restorer.torn_threshold:.2f}"
    print(f"threshold {', '.join(f'{t:.2f}' for t in thresholds)}, torn-piece threshold {torn}, dilation {restorer.dilation} px "
          f"({out['seconds']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
