#!/usr/bin/env python
"""Seconds and peak resident memory of the restore pipeline against photo size, at the ``paper`` widths.

For each size (default 0.25, 1, 2 and 12 megapixels, 4:3) it restores one synthetic scratched photo with
scratch handling on the CPU, through :class:`oldphoto_bench.restore.Restorer`:

* stage 1: the scratch detector (the released U-Net widths, 64..1024 channels) at full resolution in
  overlapping 512-px tiles; its time and memory count;
* stage 2: VAE_A -> mapping (with the partial nonlocal block) -> VAE_B, layer by layer over the whole image.

The networks are built from the ``paper`` recipe with their seeded initial weights and saved through the
training checkpoint format into a temporary folder marked UNTRAINED (``extra.untrained`` in every
checkpoint): the cost does not depend on the weights. Because an untrained detector's mask is meaningless,
stage 2 is given the photo's own drawn scratch mask (``--invalid-fraction`` of the latent cells, 5% by
default), so the nonlocal attention does the work a real scratched photo asks for.

Two attention implementations run side by side: ``linear`` (ours: valid keys gathered once, invalid cells
queried in chunks, memory linear in the cells) and ``dense`` (the released code's full (h w) x (h w)
softmax, :func:`oldphoto_bench.models.dense_partial_nonlocal_reference`), the latter only where its
matrices fit in ``--dense-limit-gb``. Faces are off (``--faces`` turns detection on).

Every case runs in a fresh subprocess. Memory is read from /proc/self/status: VmHWM after the setup (imports,
loading the networks, making the photo; loading briefly holds two copies of the weights), VmRSS before
restoring, then the high-water mark is reset (``/proc/self/clear_refs``) and VmHWM after restoring is the
peak during the restoration. ``peak`` is the larger of the two, the whole process's; ``idle`` is a
subprocess that only does the setup. A straight line fitted to the linear cases' restoration peaks gives the
memory per pixel.

    python benchmarks/restore_scaling.py                       # all four sizes: about an hour on 2 cores
    python benchmarks/restore_scaling.py --sizes 0.25 1 2 --json results/benchmarks/restore_scaling.json
    # memory probe at 12 MP, ~15 min: same widths, one block per residual stack, no detector, 1% scratched
    python benchmarks/restore_scaling.py --sizes 12 --impls linear --mapping-blocks 1 --no-detect \
        --invalid-fraction 0.01 --json results/benchmarks/restore_scaling_12mp_probe.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory_probe import current_rss_mib, peak_rss_mib, reset_peak_rss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

STAGE_NETWORKS = {
    "vae-a": ("vae", "vae"),
    "vae-b": ("vae", "vae"),
    "mapping": ("mapping", "mapping"),
    "scratch": ("detector", "scratch"),
}
DENSE_MATRICES = (
    5  # N x N float32 matrices the dense reference holds at its peak (logits, masked, softmax, ...)
)








def write_untrained_checkpoints(
    runs: Path, recipe: str = "paper", mapping_blocks: int | None = None
) -> dict[str, int]:
    """Networks of ``recipe`` with their seeded initial weights, saved like trained stages; returns parameter
    counts. The nonlocal block's output projection W (zero at init) gets small random weights so that its
    fusion is not the identity. ``mapping_blocks`` replaces the mapping's numbers of residual blocks (body and
    nonlocal block): a memory probe, since equal-width blocks run one after another and do not add to the
    peak."""
    import torch

    from oldphoto_bench.models import NETWORKS
    from oldphoto_bench.seeding import torch_generator
    from oldphoto_bench.train import resolve_config, save_checkpoint

    counts = {}
    for stage, (name, key) in STAGE_NETWORKS.items():
        cfg = resolve_config(recipe, stage)
        spec = {"type": "scratch_unet" if stage == "scratch" else key, **cfg["model"][key], "init_seed": 0}
        if stage == "mapping":
            spec["latent_channels"] = cfg["model"]["vae"]["latent_channels"]
            if mapping_blocks is not None:
                spec.update(n_res_blocks=mapping_blocks, nonlocal_res_blocks=mapping_blocks)
        net = NETWORKS.build(spec)
        if stage == "mapping" and net.nonlocal_block is not None:
            with torch.no_grad():
                w = net.nonlocal_block.W.weight
                w.copy_(torch.randn(w.shape, generator=torch_generator(1)) * 0.02)
        counts[stage] = sum(p.numel() for p in net.parameters())
        save_checkpoint(
            runs / stage / "last.pt",
            {
                "stage": stage,
                "step": 0,
                "elapsed": 0.0,
                "config": cfg,
                "specs": {name: spec},
                "models": {name: net.state_dict()},
                "optimizers": {},
                "scaler": {},
                "streams": {},
                "generators": {},
                "extra": {"untrained": True, "note": f"UNTRAINED {recipe} widths, for timing only"},
            },
        )
    (runs / "UNTRAINED.txt").write_text(
        f"untrained {recipe}-width networks written by benchmarks/restore_scaling.py "
        "for timing; do not restore photos with them\n"
    )
    return counts


def scratched_photo(height: int, width: int, invalid_fraction: float, seed: int):
    """A smooth colour photo with bright straight scratches 2-3 px wide: ((1, 3, H, W), (1, 1, H, W) mask);
    scratches are added until ``invalid_fraction`` of the 4x4 latent cells are touched."""
    import cv2
    import numpy as np
    import torch

    from oldphoto_bench.seeding import numpy_rng

    rng = numpy_rng(seed, height, width)
    coarse = torch.from_numpy(rng.random((1, 3, 6, 8)).astype(np.float32))
    image = torch.nn.functional.interpolate(
        coarse, size=(height, width), mode="bilinear", align_corners=False
    )
    mask = np.zeros((math.ceil(height / 4) * 4, math.ceil(width / 4) * 4), dtype=np.uint8)

    def touched() -> float:  # share of 4x4 latent cells with a scratched pixel (latent_valid_from_mask)
        return float(mask.reshape(mask.shape[0] // 4, 4, mask.shape[1] // 4, 4).max(axis=(1, 3)).mean())

    while touched() < invalid_fraction:
        y0, y1 = rng.uniform(0, height, 2)
        x0, x1 = rng.uniform(0, width * 0.3), rng.uniform(width * 0.7, width)
        cv2.line(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1, int(rng.integers(2, 4)))
    mask = np.ascontiguousarray(mask[:height, :width])
    m = torch.from_numpy(mask)[None, None].float()
    image = image * (1 - m) + 0.95 * m
    return image.contiguous(), m


def run_case(case: dict) -> dict:
    """Worker: build the pipeline and the photo; unless idle, restore it once; report time and memory."""
    import torch

    from oldphoto_bench.restore import Restorer

    if case["threads"]:
        torch.set_num_threads(case["threads"])
    restorer = Restorer(
        case["runs"],
        device="cpu",
        with_scratch=True,
        faces=case["faces"],
        tile=case["tile"],
        attention="dense" if case["impl"] == "dense" else "linear",
    )
    image, mask = scratched_photo(case["height"], case["width"], case["invalid_fraction"], case["seed"])
    out = {"rss_setup_peak_mib": peak_rss_mib(), "rss_before_mib": current_rss_mib()}
    out["peak_was_reset"] = reset_peak_rss()  # from here VmHWM is the peak of the restoration alone
    if case["impl"] != "idle":
        t0 = time.perf_counter()
        if case["detect"]:
            restorer.detect(image)  # stage 1 runs in full; its untrained mask is replaced by the drawn one
        t1 = time.perf_counter()
        result = restorer.restore(image, mask=mask)
        out.update(
            detect_s=t1 - t0,
            global_s=result.details["seconds"]["global"],
            faces_s=result.details["seconds"].get("faces", 0.0),
            total_s=time.perf_counter() - t0,
            layerwise=result.details["layerwise"],
            out_shape=list(result.image.shape),
        )
    out["rss_restore_peak_mib"] = peak_rss_mib()
    out["rss_peak_mib"] = max(out["rss_restore_peak_mib"], out["rss_setup_peak_mib"])  # the whole process
    out["invalid_cells"] = float(torch.nn.functional.max_pool2d(mask, 4, ceil_mode=True).mean())
    return out


def spawn(case: dict, timeout: float | None) -> dict:
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(case)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def size_for(megapixels: float) -> tuple[int, int]:
    """(height, width) of a 4:3 photo with about ``megapixels`` million pixels, sides multiples of 4."""
    w = math.sqrt(megapixels * 1e6 * 4 / 3)
    return int(round(w * 3 / 4 / 4)) * 4, int(round(w / 4)) * 4


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--sizes",
        type=float,
        nargs="+",
        default=[0.25, 1.0, 2.0, 12.0],
        metavar="MP",
        help="photo sizes in megapixels (default: 0.25 1 2 12)",
    )
    p.add_argument(
        "--impls",
        nargs="+",
        default=["linear", "dense"],
        choices=["linear", "dense"],
        help="attention implementations (default: both)",
    )
    p.add_argument("--recipe", default="paper", help="training recipe whose widths are used (default: paper)")
    p.add_argument(
        "--invalid-fraction",
        type=float,
        default=0.05,
        help="share of latent cells under scratches (default 0.05)",
    )
    p.add_argument(
        "--dense-limit-gb",
        type=float,
        default=8.0,
        help="skip dense attention when its N x N matrices would exceed this (default 8 GiB)",
    )
    p.add_argument(
        "--tile", type=int, default=512, help="Restorer tile (default 512: layer-by-layer stage 2)"
    )
    p.add_argument("--faces", action="store_true", help="run face detection too (off by default)")
    p.add_argument(
        "--no-detect",
        action="store_true",
        help="memory probe: skip stage 1 (its memory is fixed by the tile, measured at small sizes)",
    )
    p.add_argument(
        "--mapping-blocks",
        type=int,
        default=None,
        metavar="N",
        help="memory probe: N residual blocks in the mapping body and nonlocal block instead of the "
        "recipe's (same widths, same peak memory, much less time); marks the rows as a probe",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per case (default: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def fmt_mib(v: float) -> str:
    return f"{v / 1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares ``y = a + b x``; None with fewer than two points."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return 0
    rows = []
    started = time.time()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="restore-scaling-") as tmp:
        runs = Path(tmp) / "runs-untrained"
        params = write_untrained_checkpoints(runs, args.recipe, args.mapping_blocks)
        print(f"untrained {args.recipe} networks (parameters): {params}", file=sys.stderr)
        for mp in args.sizes:
            h, w = size_for(mp)
            cells = math.ceil(h / 4) * math.ceil(w / 4)
            base = {
                "runs": str(runs),
                "height": h,
                "width": w,
                "invalid_fraction": args.invalid_fraction,
                "seed": args.seed,
                "threads": args.threads,
                "faces": args.faces,
                "tile": args.tile,
                "detect": not args.no_detect,
            }
            idle = spawn({**base, "impl": "idle"}, args.timeout)
            for impl in args.impls:
                row = {
                    "megapixels": h * w / 1e6,
                    "height": h,
                    "width": w,
                    "impl": impl,
                    "latent_cells": cells,
                    "probe": bool(args.no_detect or args.mapping_blocks is not None),
                }
                dense_gib = DENSE_MATRICES * cells**2 * 4 / 2**30
                if impl == "dense" and dense_gib > args.dense_limit_gb:
                    row["skipped"] = f"dense attention needs ~{dense_gib:.0f} GiB > --dense-limit-gb"
                else:
                    print(f"{h}x{w} ({h * w / 1e6:.2f} MP) {impl} ...", file=sys.stderr, flush=True)
                    row.update(spawn({**base, "impl": impl}, args.timeout))
                    if "rss_restore_peak_mib" in row and "rss_before_mib" in idle:
                        row["rss_idle_mib"] = idle["rss_before_mib"]
                        row["rss_increment_mib"] = row["rss_restore_peak_mib"] - idle["rss_before_mib"]
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)

    header = (
        f"{'size':>16} {'impl':>6} {'detect s':>9} {'global s':>9} {'total s':>9} {'restore peak':>13} "
        f"{'over idle':>10} {'process peak':>13}"
    )
    print(header)
    for r in rows:
        size = f"{r['height']}x{r['width']}"
        if "skipped" in r or "error" in r:
            print(f"{size:>16} {r['impl']:>6}  {r.get('skipped') or r.get('error')}")
            continue
        print(
            f"{size:>16} {r['impl']:>6} {r['detect_s']:9.1f} {r['global_s']:9.1f} {r['total_s']:9.1f} "
            f"{fmt_mib(r['rss_restore_peak_mib']):>13} "
            f"{fmt_mib(r.get('rss_increment_mib', float('nan'))):>10} "
            f"{fmt_mib(r['rss_peak_mib']):>13}"
        )
    done = [r for r in rows if r["impl"] == "linear" and "rss_restore_peak_mib" in r]
    fit = fit_line([r["megapixels"] for r in done], [r["rss_restore_peak_mib"] for r in done])
    summary = {}
    if fit:
        a, b = fit
        summary = {
            "peak_mib_intercept": a,
            "peak_mib_per_megapixel": b,
            "bytes_per_pixel": b * 2**20 / 1e6,
            "predicted_peak_mib_12mp": a + 12 * b,
        }
        print(
            f"linear fit of the restoration peak: {fmt_mib(a)} + {b:.0f} MiB per megapixel "
            f"({b * 2**20 / 1e6:.0f} bytes per pixel); 12 MP -> {fmt_mib(a + 12 * b)}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "restore_scaling",
                    "recipe": args.recipe,
                    "untrained_weights": True,
                    "invalid_fraction": args.invalid_fraction,
                    "tile": args.tile,
                    "faces": args.faces,
                    "detect": not args.no_detect,
                    "mapping_blocks": args.mapping_blocks,
                    "threads": args.threads or None,
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
                    "wall_s": time.time() - started,
                    "rows": rows,
                    "fit": summary,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
