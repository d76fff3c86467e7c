"""Calibrate the threshold of an already trained scratch detector and store it in its checkpoint.

Detectors trained before calibration existed carry no threshold, so the restore pipeline falls back to the
released 0.4. This runs the same calibration as the end of ``oldphoto-bench train scratch``
(:func:`oldphoto_bench.train.scratch_calibration.calibrate_threshold`: a false-positive budget on undamaged
held-back crops of TRAINING photos, then the best F1 on damaged ones) and writes ``extra.threshold`` and
``extra.calibration`` into ``RUNS/scratch/last.pt`` (the previous file is kept as ``last.pt.bak``).

    python benchmarks/calibrate_scratch.py RUNS --data ../shared/data/clean/cbsd68,../shared/data/clean/set14
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="runs folder holding scratch/last.pt")
    ap.add_argument("--data", required=True, help="TRAINING photos (a data source; test sets are refused)")
    ap.add_argument("--preset", default="scratch", help="damage preset (default: scratch, the training preset)")
    ap.add_argument("--images", type=int, default=64, help="crops of each kind (default: 64)")
    ap.add_argument("--crop", type=int, default=128, help="crop side (default: 128)")
    ap.add_argument("--seed", type=int, default=11, help="seed of the held-back crops (default: 11)")
    ap.add_argument("--max-false-positive", type=float, default=None, help="budget (default: the recipe's 0.005)")
    args = ap.parse_args()

    from oldphoto_bench.data import check_not_test_set, open_source
    from oldphoto_bench.train.artifacts import load_scratch
    from oldphoto_bench.train.checkpoint import load_checkpoint
    from oldphoto_bench.train.scratch_calibration import DEFAULT_MAX_FALSE_POSITIVE, calibrate_threshold

    torch.set_num_threads(1)
    check_not_test_set(args.data)
    path = args.runs / "scratch" / "last.pt"
    budget = DEFAULT_MAX_FALSE_POSITIVE if args.max_false_positive is None else args.max_false_positive
    result = calibrate_threshold(load_scratch(args.runs), open_source(args.data), args.preset, args.images,
                                 args.seed, args.crop, budget)
    result["data"] = args.data
    print(json.dumps(result, indent=2))
    ckpt = load_checkpoint(path)
    ckpt.setdefault("extra", {}).update(threshold=result["threshold"], calibration=result)
    shutil.copy2(path, path.with_name("last.pt.bak"))
    torch.save(ckpt, path)
    print(f"wrote threshold {result['threshold']:.2f} into {path} (previous file: {path.name}.bak)")


if __name__ == "__main__":
    main()
