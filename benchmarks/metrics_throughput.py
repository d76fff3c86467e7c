"""Metric throughput: images per second for every registered metric on CPU (or another device).

Each per-image metric scores ``--batch`` (prediction, reference) pairs of ``--size``^2 RGB crops of
scikit-image's bundled photos (the predictions are the same crops with seeded noise and blur), after one
warm-up call; the timed call is repeated ``--repeats`` times and the best is kept (least disturbed by other
processes). Per-set metrics (FID, KID) report the feature extraction rate (images/s, the part that grows with
the data set) and, separately, the time to score two sets of ``--set-size`` feature vectors.

Metrics whose weights are missing are skipped with the reason. ``--random-weights-for-timing`` times
LPIPS and the FID Inception with seeded random weights instead (same architecture, so the same cost); those
rows are marked and never give scores.

Usage::

    python benchmarks/metrics_throughput.py                         # all metrics, 256^2, batch 16, CPU
    python benchmarks/metrics_throughput.py --metrics psnr,ssim,lpips --random-weights-for-timing
    python benchmarks/metrics_throughput.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def test_pairs(n: int, size: int, seed: int = 0):
    """``(pred, target)``: ``(n, 3, size, size)`` float32 crops in [0, 1]; pred = blurred + noisy target."""
    import skimage.data
    import torch
    import torch.nn.functional as F

    from oldphoto_bench.imageio import to_tensor
    from oldphoto_bench.seeding import numpy_rng, torch_generator

    rng = numpy_rng(seed)
    crops = []
    for i in range(n):
        a = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()
        t = to_tensor(a if a.ndim == 2 else a[..., :3])
        if min(t.shape[-2:]) < size:
            t = F.interpolate(t, scale_factor=size / min(t.shape[-2:]) + 1e-3, mode="bilinear", antialias=True)
        y = int(rng.integers(0, t.shape[-2] - size + 1))
        x = int(rng.integers(0, t.shape[-1] - size + 1))
        crops.append(t[..., y : y + size, x : x + size])
    target = torch.cat(crops).clamp(0, 1).contiguous()
    blurred = F.avg_pool2d(F.pad(target, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    noise = 0.03 * torch.randn(target.shape, generator=torch_generator(seed))
    return (blurred + noise).clamp(0, 1), target


def build(name: str, args: argparse.Namespace):
    """``(metric, None, note)`` or ``(None, reason, None)``."""
    from oldphoto_bench.metrics import FID, KID, LPIPS, METRICS, try_build

    cls = METRICS.get(name)
    kw: dict[str, Any] = {}
    if cls.requires_weights:
        kw = {"device": args.device, "weights_dir": args.weights_dir}
    metric, reason = try_build(name, **kw)
    if metric is not None or not args.random_weights_for_timing:
        return metric, reason, None
    note = "RANDOM weights (timing only)"
    if cls is LPIPS:
        return LPIPS.for_tests(seed=0, device=args.device), None, note
    if cls in (FID, KID):
        from oldphoto_bench.metrics.inception import random_fid_inception

        ext = random_fid_inception(seed=0).to(args.device)
        return cls(feature_extractor=ext, feature_name="random FID Inception", device=args.device), None, note
    return None, reason, None


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(name: str, args: argparse.Namespace, pred, target) -> dict[str, Any]:
    import torch

    metric, reason, note = build(name, args)
    if metric is None:
        return {"metric": name, "skipped": reason}
    row: dict[str, Any] = {"metric": name, "kind": metric.kind, "reference": metric.reference, "note": note}
    sync = torch.cuda.synchronize if str(args.device).startswith("cuda") else (lambda: None)
    pred, target = pred.to(args.device), target.to(args.device)
    with torch.no_grad():
        if metric.kind == "per_image":
            def run():
                metric(pred, target if metric.reference == "full" else None)
                sync()
        else:
            def run():
                metric.features(pred)
                sync()
        run()  # warm-up (first-call allocations, kernel selection)
        t = best_time(run, args.repeats)
    row.update(images_per_s=len(pred) / t, ms_per_image=1000 * t / len(pred))
    if metric.kind == "per_set":
        rng = np.random.default_rng(0)
        dim = metric.features(pred[:2]).shape[1]
        fp, ft = rng.normal(size=(args.set_size, dim)), rng.normal(size=(args.set_size, dim))
        row["score_s"] = best_time(lambda: metric.score_features(fp, ft), 1)
        row["score_set_size"] = args.set_size
        row["feature_dim"] = dim
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring for what is timed.")
    p.add_argument("--metrics", default="all", help="comma-separated metric names (default: all registered)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default: 256)")
    p.add_argument("--batch", type=int, default=16, help="pairs per call (default: 16)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls; the best is kept (default: 3)")
    p.add_argument("--set-size", type=int, default=256,
                   help="feature vectors per set when timing FID/KID scoring (default: 256)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--weights-dir", default=None, help="extra folder to look for weights in")
    p.add_argument("--random-weights-for-timing", action="store_true",
                   help="time LPIPS/FID/KID with random weights when the real ones are missing (marked)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import torch

    from oldphoto_bench.metrics import METRICS

    if args.threads:
        torch.set_num_threads(args.threads)
    names = METRICS.names() if args.metrics == "all" else [m.strip() for m in args.metrics.split(",") if m.strip()]
    for n in names:
        METRICS.get(n)  # unknown names fail before any timing
    pred, target = test_pairs(args.batch, args.size)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = []
    for n in names:
        row = measure(n, args, pred, target)
        rows.append(row)
        if "skipped" in row:
            print(f"{n:14s} skipped: {row['skipped']}", flush=True)
            continue
        extra = f"  score {row['score_s']:.2f} s for 2x{row['score_set_size']} x {row['feature_dim']}-d" \
            if "score_s" in row else ""
        note = f"  [{row['note']}]" if row["note"] else ""
        print(f"{n:14s} {row['kind']:9s} {row['images_per_s']:9.1f} img/s  {row['ms_per_image']:8.2f} ms/img"
              f"{extra}{note}", flush=True)
    result = {"settings": {"size": args.size, "batch": args.batch, "repeats": args.repeats,
                           "device": args.device, "threads": torch.get_num_threads(),
                           "set_size": args.set_size, "random_weights_for_timing": args.random_weights_for_timing},
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpu_count": os.cpu_count(), "torch": torch.__version__,
                          # other processes skew CPU timings: record the 1/5/15-minute load around the run
                          "loadavg_before": load_before,
                          "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None},
              "results": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
