"""The most the face stage can add: an oracle enhancer that returns the clean face, through the real paste-back.

For each photo of a restore folder written by ``benchmarks/eval_face_stage.py`` (``stage1/`` and
``report.json``'s landmarks), the clean photo's aligned face (same landmarks, crop side ``--crop``) stands in
for the enhancer's output, seen at the enhancer's size ``s`` (resized to ``s`` and back) and composed as
:func:`oldphoto_bench.faces.refine._enhance` does (``crop + resize(G(x) - x)``); then, as
:func:`~oldphoto_bench.faces.refine_faces`, optionally histogram-matched to the stage-1 crop, made gray for a
gray photo, and pasted back with :func:`~oldphoto_bench.faces.blend.paste_back`. Prints the whole-photo PSNR
gain over ``stage1/`` against the clean photo, per photo and on average.

    python benchmarks/face_stage_ceiling.py --work runs/eval_face_stage --label tiny
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _resize(x: torch.Tensor, s: int) -> torch.Tensor:
    return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/eval_face_stage"))
    ap.add_argument("--label", required=True, help="restore sub-folder of --work (stage1/, report.json)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "faces" / "ffhq10")
    ap.add_argument("--crop", type=int, default=256, help="aligned crop side (refine_faces' size; 256)")
    ap.add_argument("--sizes", default="128,256", help="enhancer sizes to try")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from oldphoto_bench.faces.align import align_face
    from oldphoto_bench.faces.blend import match_histograms, paste_back
    from oldphoto_bench.imageio import gray_to_rgb, load_image, rgb_to_luma
    from oldphoto_bench.metrics.fidelity import psnr

    folder = args.work / args.label
    report = {e["stem"]: e for e in json.loads((folder / "report.json").read_text())["images"]}
    gains: dict[str, list[float]] = {}
    for stem in sorted(report):
        faces = report[stem].get("faces") or []
        if not faces or not (args.data / f"{stem}.png").is_file():
            continue
        clean = load_image(args.data / f"{stem}.png")[0]
        stage1 = load_image(folder / "stage1" / f"{stem}.png")[0]
        gray = bool(torch.equal(stage1[:, 0], stage1[:, 1]) and torch.equal(stage1[:, 1], stage1[:, 2]))
        base = float(psnr(stage1, clean)[0])
        for face in faces:
            lm = np.asarray(face["landmarks"], dtype=np.float64)
            crop, matrix = align_face(stage1, lm, args.crop)
            target = align_face(clean, lm, args.crop)[0]
            for s in (int(v) for v in args.sizes.split(",")):
                x = _resize(crop, s)
                composed = (crop + _resize(_resize(target, s) - x, args.crop)).clamp(0, 1)
                for matched in (True, False):
                    out = match_histograms(composed, crop) if matched else composed
                    if gray:
                        out = gray_to_rgb(rgb_to_luma(out))
                    pasted, _ = paste_back(stage1, out, matrix, reference=crop)
                    key = f"enhancer {s} px, histogram matching {'on' if matched else 'off'}"
                    gains.setdefault(key, []).append(float(psnr(pasted, clean)[0]) - base)
    summary = {k: {"mean_gain_db": statistics.fmean(v), "per_photo": v} for k, v in gains.items()}
    for k, v in summary.items():
        print(f"{k:45s} {v['mean_gain_db']:+.2f} dB   " + " ".join(f"{g:+.2f}" for g in v["per_photo"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"crop": args.crop, "oracle": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
