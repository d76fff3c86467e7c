#!/usr/bin/env python
"""Peak memory and time of the partial nonlocal block: the dense N x N reference against ours.

For each latent grid (default 64^2, 128^2, 256^2 and 512^2 cells; a 512^2 latent is a 2048 x 2048 photo),
batch 1, ``--channels`` wide, with a scratch-like mask covering ``--invalid-fraction`` of the cells, it
runs the attention + fusion stage (``PartialNonLocal.fuse``; the residual blocks after it are the same
convs in both and are left out) of

* ``dense``: :func:`oldphoto_bench.models.dense_partial_nonlocal_reference`, the released code's way
  (the full masked (h*w) x (h*w) softmax), only where that matrix fits in ``--dense-limit-gb``;
* ``ours``: gathered valid keys, only invalid cells queried, mask-free SDPA, chunked queries.

Every case runs in a fresh subprocess. CPU: its peak RSS (VmHWM) minus that of an idle subprocess that
does the same setup (imports, inputs, weights) and then nothing. CUDA: ``torch.cuda.max_memory_allocated``
during the call minus what was allocated before it. Times are wall-clock seconds of one call after a
small warm-up call. ``--train`` measures forward + backward instead of inference.

    python benchmarks/nonlocal_memory.py                  # the table, about 1-2 minutes on 2 CPU cores
    python benchmarks/nonlocal_memory.py --device cuda --json nonlocal.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from memory_probe import peak_rss_mib  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def scratch_cells(h: int, w: int, fraction: float, seed: int):
    """A (1, 1, h, w) bool validity grid with thin, slightly curved scratches over ~``fraction`` of cells."""
    import numpy as np
    import torch

    from oldphoto_bench.seeding import numpy_rng

    rng = numpy_rng(seed, h, w)
    damaged = np.zeros((h, w), dtype=bool)
    while damaged.mean() < fraction:
        y, x = rng.uniform(0, h), rng.uniform(0, w)
        angle = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(0.3, 1.0) * max(h, w)
        width = int(rng.integers(1, 3))  # a pixel scratch max-pooled to the latent is 1-2 cells wide
        for _ in range(int(2 * length)):
            angle += rng.normal(0.0, 0.02)
            y, x = y + 0.5 * math.sin(angle), x + 0.5 * math.cos(angle)
            r, c = int(y), int(x)
            damaged[max(r, 0) : max(r + width, 0), max(c, 0) : max(c + width, 0)] = True
    return torch.from_numpy(~damaged)[None, None]




def run_case(case: dict) -> dict:
    """Worker: set up one grid, run ``case['impl']`` (idle, dense or ours) once, report time and memory."""
    import torch

    from oldphoto_bench.models import PartialNonLocal, dense_partial_nonlocal_reference
    from oldphoto_bench.seeding import torch_generator

    if case["threads"]:
        torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    side, c = case["grid"], case["channels"]
    block = PartialNonLocal(c, case["inter_channels"], n_res_blocks=0, query_chunk=case["query_chunk"]).to(device)
    with torch.no_grad():  # a non-zero W, as after training (irrelevant to cost, keeps the output honest)
        block.W.weight.copy_(torch.randn(block.W.weight.shape, generator=torch_generator(1)) * 0.02)
    x = torch.randn(1, c, side, side, generator=torch_generator(case["seed"])).to(device)
    valid = scratch_cells(side, side, case["invalid_fraction"], case["seed"]).to(device)
    fns = {"ours": block.fuse, "dense": lambda a, v: dense_partial_nonlocal_reference(block, a, v)}

    def call(fn, a, v):
        if case["train"]:
            a = a.detach().requires_grad_(True)
            fn(a, v).square().sum().backward()
        else:
            with torch.no_grad():
                fn(a, v)

    out = {"invalid_fraction": float((~valid).float().mean())}
    if case["impl"] != "idle":
        fn = fns[case["impl"]]
        call(fn, x[:, :, :8, :8], valid[:, :, :8, :8])  # warm-up: kernels, thread pools, allocator
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        call(fn, x, valid)
        if device.type == "cuda":
            torch.cuda.synchronize()
            out["cuda_peak_mib"] = (torch.cuda.max_memory_allocated() - before) / 2**20
        out["time_s"] = time.perf_counter() - t0
    out["rss_peak_mib"] = peak_rss_mib()
    return out


def spawn(case: dict) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(case)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256, 512],
                   help="latent grid sides (cells per side); default 64 128 256 512")
    p.add_argument("--channels", type=int, default=64, help="block width C (default 64: the VAE latent width)")
    p.add_argument("--inter-channels", type=int, default=None, help="theta/phi/g width (default: = channels)")
    p.add_argument("--invalid-fraction", type=float, default=0.07, help="fraction of scratched cells (0.07)")
    p.add_argument("--query-chunk", type=int, default=4096, help="query rows per attention call (4096)")
    p.add_argument("--dense-limit-gb", type=float, default=8.0,
                   help="skip the dense reference when its N x N float32 matrix exceeds this (8 GiB)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--train", action="store_true", help="measure forward + backward instead of inference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the table as JSON")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def fmt_mib(v: float) -> str:
    return f"{v / 1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return 0
    base = {"channels": args.channels, "inter_channels": args.inter_channels or args.channels,
            "invalid_fraction": args.invalid_fraction, "query_chunk": args.query_chunk, "device": args.device,
            "threads": args.threads, "train": args.train, "seed": args.seed}
    rows = []
    header = f"{'grid':>9} {'cells':>8} {'invalid':>7} {'impl':>6} {'time':>9} {'peak memory':>12}  note"
    print(f"partial nonlocal fusion, C={args.channels}, d={base['inter_channels']}, batch 1, device {args.device}, "
          f"{'forward+backward' if args.train else 'inference'}; memory above an idle process with the same inputs")
    print(header)
    print("-" * len(header))
    for side in args.grids:
        cells = side * side
        idle = spawn({**base, "grid": side, "impl": "idle"})
        for impl in ("dense", "ours"):
            row = {"grid": side, "cells": cells, "impl": impl}
            need_gib = cells * cells * 4 / 2**30
            if impl == "dense" and need_gib > args.dense_limit_gb:
                row["note"] = f"n/a (needs {need_gib:.0f} GiB)"
            else:
                res = spawn({**base, "grid": side, "impl": impl})
                if "error" in res or "error" in idle:
                    row["note"] = res.get("error") or idle["error"]
                else:
                    row["time_s"] = res["time_s"]
                    row["invalid_fraction"] = res["invalid_fraction"]
                    row["peak_mib"] = res.get("cuda_peak_mib", res["rss_peak_mib"] - idle["rss_peak_mib"])
            rows.append(row)
            inv = f"{row['invalid_fraction']:.1%}" if "invalid_fraction" in row else ""
            t = f"{row['time_s']:.3f} s" if "time_s" in row else "-"
            m = fmt_mib(max(row["peak_mib"], 0.0)) if "peak_mib" in row else "-"
            print(f"{side:>4}x{side:<4} {cells:>8} {inv:>7} {impl:>6} {t:>9} {m:>12}  {row.get('note', '')}", flush=True)
    if args.json:
        import torch

        meta = {**base, "torch": torch.__version__, "cpu_count": os.cpu_count(),
                "memory": "CUDA max_memory_allocated above pre-call" if args.device == "cuda"
                else "peak RSS (VmHWM) above an idle process with the same setup"}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
