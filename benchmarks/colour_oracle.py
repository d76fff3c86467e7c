"""How much of each method's error is global colour: PSNR / SSIM before and after an oracle colour match.

Reads a ``bench`` output folder (``data/clean/*.png`` and ``cache/<method>/*.png``, e.g. the one that
``publish_results.py`` keeps in ``.publish_work/``) and, per method, scores each output as it is and after the
per-photo least-squares affine map of RGB that takes it closest to the clean photo::

    [A|b] = argmin || A x + b - y ||^2      (3 x 4, fitted on all pixels of the photo; it sees the answer)

The first number is what the benchmark reports; the second is what the method would score with a perfect
global colour correction, so the difference is its remaining colour error and the second number compares
the methods' restoration of structure (noise, blur, defects) alone.

    python benchmarks/colour_oracle.py --run .publish_work/kodak24_paper_seed0_nall --methods input,unet,ours
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch


def fit_affine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x``, ``y`` (..., 3) colours -> the least-squares ``(4, 3)`` ``[A | b]^T`` with ``[x, 1] @ coef ~ y``
    (the library's :func:`~oldphoto_bench.models.colour.fit_colour` without its ridge)."""
    from oldphoto_bench.models.colour import fit_colour

    def as_image(a: np.ndarray) -> torch.Tensor:  # (..., 3) -> (1, 3, P, 1) float64
        return torch.from_numpy(np.asarray(a, dtype=np.float64).reshape(-1, 3).T.copy())[None, :, :, None]

    return fit_colour(as_image(x), as_image(y), ridge=0.0)[0].T.numpy()


def oracle_colour(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x``, ``y`` (H, W, 3) float in [0, 1] -> ``clip(A x + b)`` with the least-squares affine map to ``y``."""
    coef = fit_affine(x, y)
    return np.clip(x @ coef[:3] + coef[3], 0.0, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="a bench output folder (data/clean, cache/<method>)")
    ap.add_argument("--methods", default="input,unet,ours", help="comma-separated methods (default: input,unet,ours)")
    ap.add_argument("--json", type=Path, default=None, help="write per-photo and mean figures here")
    args = ap.parse_args()

    from oldphoto_bench.imageio import load_image
    from oldphoto_bench.metrics.fidelity import psnr, ssim

    def nchw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).float().permute(2, 0, 1)[None]

    clean_dir = args.run / "data" / "clean"
    names = sorted(p.name for p in clean_dir.glob("*.png"))
    if not names:
        raise SystemExit(f"no clean references in {clean_dir}: --run must be a bench output folder")
    out: dict = {"run": args.run.name, "photos": len(names), "methods": {}}
    print(f"{'method':>12}  {'PSNR':>6} -> {'oracle':>6}   {'SSIM':>5} -> {'oracle':>6}   ({len(names)} photos)")
    for method in [m for m in args.methods.split(",") if m]:
        folder = args.run / "cache" / method
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise SystemExit(f"{method}: {len(missing)} output(s) missing in {folder} (run bench with it first)")
        rows = []
        for name in names:
            y = load_image(clean_dir / name)[0][0].permute(1, 2, 0).double().numpy()
            x = load_image(folder / name)[0][0].permute(1, 2, 0).double().numpy()
            matched = oracle_colour(x, y)
            rows.append({"image": name,
                         "psnr": float(psnr(nchw(x), nchw(y))[0]), "psnr_oracle": float(psnr(nchw(matched), nchw(y))[0]),
                         "ssim": float(ssim(nchw(x), nchw(y))[0]), "ssim_oracle": float(ssim(nchw(matched), nchw(y))[0])})
        mean = {k: statistics.fmean(r[k] for r in rows) for k in ("psnr", "psnr_oracle", "ssim", "ssim_oracle")}
        out["methods"][method] = {"mean": mean, "per_photo": rows}
        print(f"{method:>12}  {mean['psnr']:6.2f} -> {mean['psnr_oracle']:6.2f}   "
              f"{mean['ssim']:.3f} -> {mean['ssim_oracle']:.3f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
