"""Does the face stage improve faces? ``restore``'s ``final/`` against its own ``stage1/`` on aged test faces.

Ages the photos of ``--data`` (``faces/ffhq10`` by default: ten 512 px photos, one face each, a test set)
with ``oldphoto-bench degrade --preset face --seed 0``, restores them with ``oldphoto-bench restore
--checkpoints RUNS`` (the shipped checkpoints by default) and compares, against the clean photo:

* PSNR (RGB, whole photo) of the aged input, of ``stage1/`` (the global restoration) and of ``final/`` (after
  the face stage); the gain ``final - stage1`` is what the face stage adds;
* the same PSNR inside the detected face box (``report.json``'s ``box``, clipped to the photo);
* sharpness inside the face box: the mean Sobel gradient magnitude of the luma
  ``Y = 0.299 R + 0.587 G + 0.114 B``, ``mean(sqrt(Gx^2 + Gy^2))`` with the 3x3 Sobel kernels over the box's
  interior pixels; the ratio ``final / stage1`` (>= 0.9: the face stage does not blur) and each against the
  clean photo's.

Writes a JSON (per photo and means) and, with ``--sheet``, a PNG of the face boxes side by side
(clean | aged | stage1 | final, one row per photo) to look at.

    python benchmarks/eval_face_stage.py --checkpoints oldphoto_bench/pretrained/tiny --work /tmp/faces \\
        --json results/faces/eval.json --sheet results/faces/crops.png

The aged photos are written once into ``WORK/aged`` and reused; each run restores into ``WORK/<label>``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"


def _cli(*args: str) -> None:
    """Run ``oldphoto-bench ARGS`` as a user would (the checkout's package), failing loudly."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "oldphoto_bench", *args, "--no-progress"], check=True, env=env)


def sobel_sharpness(image: torch.Tensor) -> float:
    """Mean Sobel gradient magnitude of the luma of ``image`` ``(1, 3, H, W)`` in [0, 1] (interior pixels), with
    the unnormalised 3x3 Sobel kernels: 8 x :func:`oldphoto_bench.metrics.gradient_sharpness`."""
    from oldphoto_bench.metrics import gradient_sharpness

    return 8.0 * float(gradient_sharpness(image.float())[0])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    from oldphoto_bench.metrics.fidelity import psnr

    return float(psnr(a, b)[0])


def _box(face: dict, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = face["box"]
    return max(0, math.floor(x0)), max(0, math.floor(y0)), min(w, math.ceil(x1)), min(h, math.ceil(y1))


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(vals) if vals else None


def evaluate(clean_dir: Path, aged_dir: Path, out_dir: Path) -> list[dict]:
    """Per-photo figures of one restore folder ``out_dir`` (``stage1/``, ``final/``, ``report.json``)."""
    from oldphoto_bench.imageio import load_image

    report = {e["stem"]: e for e in json.loads((out_dir / "report.json").read_text())["images"]}
    rows = []
    for stem in sorted(report):
        clean_path = clean_dir / f"{stem}.png"
        if not clean_path.is_file():
            continue
        clean = load_image(clean_path)[0]
        aged = load_image(aged_dir / f"{stem}.png")[0]
        stage1 = load_image(out_dir / "stage1" / f"{stem}.png")[0]
        final = load_image(out_dir / "final" / f"{stem}.png")[0]
        faces = report[stem].get("faces") or []
        row = {"photo": stem, "faces": len(faces), "status": [f.get("status") for f in faces],
               "psnr_input": _psnr(aged, clean), "psnr_stage1": _psnr(stage1, clean),
               "psnr_final": _psnr(final, clean)}
        row["gain_db"] = row["psnr_final"] - row["psnr_stage1"]
        if faces:
            h, w = clean.shape[-2:]
            x0, y0, x1, y1 = _box(max(faces, key=lambda f: f.get("score", 0.0)), h, w)
            crops = {k: v[..., y0:y1, x0:x1] for k, v in
                     {"clean": clean, "input": aged, "stage1": stage1, "final": final}.items()}
            row["box"] = [x0, y0, x1, y1]
            for k in ("input", "stage1", "final"):
                row[f"face_psnr_{k}"] = _psnr(crops[k], crops["clean"])
            sharp = {k: sobel_sharpness(v) for k, v in crops.items()}
            row.update({f"sharpness_{k}": s for k, s in sharp.items()})
            row["sharpness_ratio"] = sharp["final"] / sharp["stage1"]
        rows.append(row)
    return rows


def contact_sheet(rows: list[dict], clean_dir: Path, aged_dir: Path, out_dir: Path, path: Path,
                  side: int = 192) -> None:
    """One row per photo: the face box of clean | aged | stage1 | final, each resized to ``side``."""
    from oldphoto_bench.imageio import load_image, save_image

    tiles = []
    for r in rows:
        if "box" not in r:
            continue
        x0, y0, x1, y1 = r["box"]
        srcs = [clean_dir / f"{r['photo']}.png", aged_dir / f"{r['photo']}.png",
                out_dir / "stage1" / f"{r['photo']}.png", out_dir / "final" / f"{r['photo']}.png"]
        row = [F.interpolate(load_image(p)[0][..., y0:y1, x0:x1], size=(side, side), mode="bilinear",
                             antialias=True, align_corners=False) for p in srcs]
        tiles.append(torch.cat(row, dim=-1))
    if tiles:
        save_image(torch.cat(tiles, dim=-2).clamp(0, 1), path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=Path, default=REPO / "oldphoto_bench" / "pretrained" / "tiny",
                    help="runs folder for restore (vae-a, vae-b, mapping, face)")
    ap.add_argument("--data", type=Path, default=SHARED / "faces" / "ffhq10", help="clean test photos")
    ap.add_argument("--work", type=Path, default=Path("runs/eval_face_stage"), help="aged photos and restores")
    ap.add_argument("--label", default=None, help="sub-folder of --work for this restore (default: checkpoints' name)")
    ap.add_argument("--seed", type=int, default=0, help="ageing seed (default: 0)")
    ap.add_argument("--preset", default="face", help="ageing preset (default: face)")
    ap.add_argument("--overwrite", action="store_true", help="restore again even if the folder exists")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--sheet", type=Path, default=None, help="write a PNG of the face crops here")
    args = ap.parse_args()
    torch.set_num_threads(1)

    aged = args.work / f"aged_{args.preset}_seed{args.seed}"
    if not (aged / "manifest.json").is_file():
        _cli("degrade", str(args.data), "--out", str(aged), "--preset", args.preset, "--seed", str(args.seed))
    inputs = sorted(p for p in aged.glob("*.png") if not p.stem.endswith("_mask"))
    label = args.label or args.checkpoints.resolve().name
    out = args.work / label
    if args.overwrite or not (out / "report.json").is_file():
        _cli("restore", *map(str, inputs), "--out", str(out), "--checkpoints", str(args.checkpoints),
             *(["--overwrite"] if args.overwrite else []))
    rows = evaluate(args.data, aged, out)
    keys = ["psnr_input", "psnr_stage1", "psnr_final", "gain_db", "face_psnr_input", "face_psnr_stage1",
            "face_psnr_final", "sharpness_clean", "sharpness_input", "sharpness_stage1", "sharpness_final",
            "sharpness_ratio"]
    summary = {k: _mean(rows, k) for k in keys}
    summary["photos"] = len(rows)
    summary["faces_enhanced"] = sum(s == "enhanced" for r in rows for s in r["status"])
    summary["min_sharpness_ratio"] = min((r["sharpness_ratio"] for r in rows if "sharpness_ratio" in r),
                                         default=None)
    print(f"{'photo':8s} {'input':>7s} {'stage1':>7s} {'final':>7s} {'gain':>6s} {'face s1':>7s} "
          f"{'face fin':>8s} {'sharp':>6s}")
    for r in rows:
        print(f"{r['photo']:8s} {r['psnr_input']:7.2f} {r['psnr_stage1']:7.2f} {r['psnr_final']:7.2f} "
              f"{r['gain_db']:+6.2f} {r.get('face_psnr_stage1', float('nan')):7.2f} "
              f"{r.get('face_psnr_final', float('nan')):8.2f} {r.get('sharpness_ratio', float('nan')):6.3f}")
    s = summary
    print(f"{'mean':8s} {s['psnr_input']:7.2f} {s['psnr_stage1']:7.2f} {s['psnr_final']:7.2f} "
          f"{s['gain_db']:+6.2f} {s['face_psnr_stage1'] or float('nan'):7.2f} "
          f"{s['face_psnr_final'] or float('nan'):8.2f} {s['sharpness_ratio'] or float('nan'):6.3f}")
    print(f"sharpness (mean Sobel |grad| of luma in the face box): clean {s['sharpness_clean']:.4f}, input "
          f"{s['sharpness_input']:.4f}, stage1 {s['sharpness_stage1']:.4f}, final {s['sharpness_final']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"data": str(args.data), "preset": args.preset, "seed": args.seed,
                   "checkpoints": str(args.checkpoints), "summary": summary, "photos": rows,
                   "sharpness": "mean Sobel gradient magnitude of luma (0.299 R + 0.587 G + 0.114 B) in the face box"}
        from publish_results import portable  # machine paths as ../shared/..., ./... or <work>/...

        args.json.write_text(portable(json.dumps(payload, indent=1), args.work) + "\n")
    if args.sheet:
        contact_sheet(rows, args.data, aged, out, args.sheet)


if __name__ == "__main__":
    main()
