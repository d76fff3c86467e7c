"""Which synthetic damage the restore pipeline's mask finds: recall per defect type and per visibility.

Ages each photo of ``--data`` (shrunk to ``--max-side``) with ``--preset`` (seed ``derive_seed(--seed, i)``, as
``benchmarks/eval_scratch_detector.py`` does) and runs stage 1 of ``restore --with-scratch`` (scratch detector
united with the torn-piece detector, the checkpoint's calibrated threshold). Against the synthesizer's damage
mask it reports, pooled over the photos:

* pixel precision, recall and F1 of the whole mask;
* per structured op (scratches, cracks, creases, dust, torn): its share of the damage pixels and the recall
  on them (each op's own mask, replayed alone; ops may overlap);
* per visibility bin: how much the defects changed a damage pixel's luma, ``|Y(aged) - Y(aged without the
  structured ops)|`` (the same record replayed without them), its share and the recall there. Damage that the
  later blur, noise, JPEG or fading hid has little visibility and no detector can find it.

    python benchmarks/scratch_recall_breakdown.py --checkpoints oldphoto_bench/pretrained/tiny \\
        --data ../shared/data/clean/mcmaster --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
VISIBILITY_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 1.01)


def op_masks(clean: torch.Tensor, record: dict) -> dict[str, np.ndarray]:
    """The damage mask of each structured op of ``record`` replayed alone on ``clean`` (1, 3, H, W) ->
    ``{op type: (H, W) bool}`` (ops of one type united). Their union is the synthesizer's mask."""
    from oldphoto_bench.degrade import OPS

    masks: dict[str, np.ndarray] = {}
    for op in record["ops"]:
        if OPS.get(op["type"]).structured:
            _, own = OPS.build(op.get("config", {"type": op["type"]})).apply(clean, op["params"])
            own = own[0, 0].cpu().numpy()
            masks[op["type"]] = masks[op["type"]] | own if op["type"] in masks else own
    return masks


def damage_visibility(clean: torch.Tensor, aged: torch.Tensor, record: dict) -> np.ndarray:
    """``|Y(aged) - Y(undamaged)|`` ``(H, W)``: ``undamaged`` is ``record`` replayed on ``clean`` without its
    structured ops, the same photo aged alike but with no defect drawn."""
    from oldphoto_bench.degrade import OPS, Synthesizer
    from oldphoto_bench.imageio import rgb_to_luma

    rest = [op for op in record["ops"] if not OPS.get(op["type"]).structured]
    undamaged = Synthesizer.replay(clean, {**record, "ops": rest}).image
    return (rgb_to_luma(aged) - rgb_to_luma(undamaged)).abs()[0, 0].cpu().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", required=True, type=Path, help="runs folder with scratch/last.pt (and torn/)")
    ap.add_argument("--data", default=str(SHARED / "clean" / "mcmaster"), help="clean photos to age (a data source)")
    ap.add_argument("--preset", default="paper", help="degradation preset (default: paper)")
    ap.add_argument("--seed", type=int, default=0, help="base seed of the damage (default: 0)")
    ap.add_argument("--max-side", type=int, default=512, help="downscale so max(H, W) <= this (bench's default)")
    ap.add_argument("--threshold", type=float, default=None, help="override the scratch detector's threshold")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    from oldphoto_bench.data import open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.imageio import resize_max_side
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.seeding import derive_seed
    from oldphoto_bench.segmentation_metrics import Confusion, confusion

    torch.set_num_threads(1)
    restorer = Restorer(args.checkpoints, with_scratch=True, faces=False, threshold=args.threshold)
    synth, src = Synthesizer(args.preset), open_source(args.data)
    by_op: dict[str, list[int]] = {}  # op type -> [found, damage pixels]
    by_vis = np.zeros((len(VISIBILITY_BINS) - 1, 2), np.int64)
    total_mask = Confusion()
    t0 = time.perf_counter()
    for i in range(len(src)):
        clean = resize_max_side(src[i].image, args.max_side)
        aged = synth(clean, seed=derive_seed(args.seed, i))
        record = aged.records[0]
        found = restorer.detect_mask(aged.image)[0, 0].numpy() > 0.5
        truth = aged.mask[0, 0].numpy() > 0.5
        total_mask = total_mask + confusion(found, truth)
        for kind, own in op_masks(clean, record).items():
            counts = by_op.setdefault(kind, [0, 0])
            counts[0] += int((own & found).sum())
            counts[1] += int(own.sum())
        vis = damage_visibility(clean, aged.image, record)
        for k in range(len(VISIBILITY_BINS) - 1):
            sel = truth & (vis >= VISIBILITY_BINS[k]) & (vis < VISIBILITY_BINS[k + 1])
            by_vis[k] += [int((sel & found).sum()), int(sel.sum())]
    total = sum(c[1] for c in by_op.values())
    out = {"checkpoints": str(args.checkpoints), "data": args.data, "preset": args.preset, "seed": args.seed,
           "photos": len(src), "threshold": restorer.threshold,
           "precision": total_mask.precision, "recall": total_mask.recall, "f1": total_mask.f1,
           "by_op": {k: {"share": c[1] / max(total, 1), "recall": c[0] / max(c[1], 1)} for k, c in by_op.items()},
           "by_visibility": [{"from": VISIBILITY_BINS[k], "to": VISIBILITY_BINS[k + 1],
                              "share": int(by_vis[k, 1]) / max(int(by_vis[:, 1].sum()), 1),
                              "recall": int(by_vis[k, 0]) / max(int(by_vis[k, 1]), 1)}
                             for k in range(len(VISIBILITY_BINS) - 1)],
           "seconds": time.perf_counter() - t0}
    print(f"{len(src)} photos, preset {args.preset}: F1 {out['f1']:.3f}, precision {out['precision']:.3f}, "
          f"recall {out['recall']:.3f} (threshold {restorer.threshold:.2f})")
    for k, v in sorted(out["by_op"].items(), key=lambda kv: -kv[1]["share"]):
        print(f"  {k:<10} {100 * v['share']:5.1f}% of the damage pixels, recall {v['recall']:.2f}")
    for v in out["by_visibility"]:
        print(f"  luma change {v['from']:.2f}-{min(v['to'], 1.0):.2f}: {100 * v['share']:5.1f}% of the damage "
              f"pixels, recall {v['recall']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
