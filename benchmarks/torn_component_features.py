"""Can anything besides the torn-piece net's own probability tell a real torn piece from a false one?

The restore pipeline keeps a torn-piece component (``p_t >= t_t``, 8-connected) when its mean probability
reaches ``c_t`` (:mod:`oldphoto_bench.restore.damage`), then fills it by Telea inpainting. On the benchmark's
Kodak24 photos false pieces on bright, pale areas touching the border cost whole decibels on a few photos, so
this probe scores, per component of the shipped torn mask on photos aged with torn pieces on half of them,
features a second filter could use, as the area under the ROC curve for "real" (at least half of the component
inside the damage mask) against "false":

* ``prob``: the component's mean torn probability (what the shipped filter uses);
* ``paper``: minus the largest channel distance of its mean colour from the synthesizer's paper white
  (missing paper is painted after the ageing, so it is not tinted with the photo);
* ``contrast``: its mean luma minus that of a 6-pixel ring around it (paper is brighter than the photo);
* ``edge``: median over its border of the strongest Sobel/8 luma gradient (sigma-1 smoothing) within 4 pixels
  (a tear is a step edge; a pale area's threshold contour need not be);
* ``scratch``: the scratch detector's mean probability on a 3-pixel band around its border;
* ``flat``: minus the luma standard deviation inside;
* ``tta``: its mean probability after averaging the net over 4 flips and thumbnails of size +-16 px.

It also prints what filling each group of components does to the aged photo's error before any network runs
(``sum |fill - clean|^2 - |aged - clean|^2`` over the photo, in units of mean squared error per photo).

    python benchmarks/torn_component_features.py --data ../shared/data/clean/mcmaster,../shared/data/clean/cbsd68

Sources must not be test sets (Kodak24, FFHQ-10, the embedded photos). Measured: about 1 s per aged photo.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from oldphoto_bench.degrade.torn import PAPER_WHITE

LUMA = np.array([0.299, 0.587, 0.114])
FEATURES = ("prob", "paper", "contrast", "edge", "scratch", "flat", "tta")


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a random real component scores above a random false one), ties counting half."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n) + 0.5 * (p == n)).mean()) if len(pos) and len(neg) else float("nan")


def tta_probability(detector, image: torch.Tensor) -> torch.Tensor:
    """The torn net averaged over 4 flips and thumbnail sizes ``size - 16, size, size + 16``."""
    from oldphoto_bench.restore.torn import torn_probability

    size, out = detector.torn.thumbnail_size, []
    for dims in ((), (-1,), (-2,), (-1, -2)):
        x = image.flip(dims) if dims else image
        for s in (size - 16, size, size + 16):
            q = torn_probability(detector.torn, x, s)
            out.append(q.flip(dims) if dims else q)
    return torch.stack(out).mean(0)


def component_rows(detector, aged: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> list[dict]:
    """One row per component of the pipeline's torn-piece mask (``p_t >= t_t``, mean probability >= ``c_t``)."""
    from oldphoto_bench.restore.inpaint import fill_mask

    prob_t = detector.torn_probability(aged)
    kept = detector.torn_mask(prob_t)[0, 0].numpy().astype(np.uint8)
    if not kept.any():  # nothing to describe: skip the costlier maps below
        return []
    prob = prob_t[0, 0].numpy()
    tta = tta_probability(detector, aged)[0, 0].numpy()
    scratch = detector.scratch_probability(aged)[0, 0].numpy()
    x = aged[0].permute(1, 2, 0).numpy()
    luma = (x @ LUMA).astype(np.float32)
    smooth = cv2.GaussianBlur(luma, (0, 0), 1.0)
    grad = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)) / 8
    grad_near = cv2.dilate(grad, np.ones((9, 9), np.uint8))
    n, labels = cv2.connectedComponents(kept, connectivity=8)  # kept components are whole ones: same labels
    inner = np.zeros_like(luma, dtype=bool)
    inner[1:-1, 1:-1] = True  # the photo's own border is not a tear
    base_err = float(((aged - clean) ** 2).sum())
    rows = []
    for j in range(1, n):
        comp = labels == j
        c8 = comp.astype(np.uint8)
        border = comp & ~cv2.erode(c8, np.ones((3, 3), np.uint8)).astype(bool) & inner
        band = (cv2.dilate(c8, np.ones((7, 7), np.uint8)) > cv2.erode(c8, np.ones((7, 7), np.uint8))) & inner
        ring = cv2.dilate(c8, np.ones((13, 13), np.uint8)).astype(bool) & ~comp
        filled, _ = fill_mask(aged, torch.from_numpy(c8).float()[None, None])
        rows.append({
            "real": bool(mask[0, 0].numpy()[comp].mean() >= 0.5), "area": float(comp.mean()),
            "prob": float(prob[comp].mean()),
            "paper": -float(np.abs(x[comp].mean(0) - np.asarray(PAPER_WHITE)).max()),
            "contrast": float(luma[comp].mean() - luma[ring].mean()),
            "edge": float(np.median(grad_near[border])) if border.any() else 0.0,
            "scratch": float(scratch[band].mean()) if band.any() else 0.0,
            "flat": -float(luma[comp].std()),
            "tta": float(tta[comp].mean()),
            "fill_gain": (base_err - float(((filled - clean) ** 2).sum())) / aged.numel(),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="comma-separated clean photo sources (not test sets)")
    ap.add_argument("--checkpoints", default=None, help="runs folder (default: the shipped tiny checkpoints)")
    ap.add_argument("--seed", type=int, default=11, help="base seed of the agings (default 11: not the bench's 0)")
    ap.add_argument("--reps", type=int, default=2, help="agings per photo (default 2)")
    ap.add_argument("--torn-p", type=float, default=0.5, help="probability of torn pieces per ageing (default 0.5)")
    ap.add_argument("--max-side", type=int, default=512, help="photos shrunk to this longer side (default 512)")
    ap.add_argument("--json", type=Path, default=None, help="write every component's features here")
    args = ap.parse_args()

    from oldphoto_bench.data import check_not_test_set, open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.imageio import resize_max_side
    from oldphoto_bench.restore.damage import DamageDetector
    from oldphoto_bench.restore.restorer import default_checkpoints
    from oldphoto_bench.seeding import derive_seed
    from oldphoto_bench.train.torn_stage import preset_with_torn_p

    detector = DamageDetector(args.checkpoints or default_checkpoints())
    if detector.torn is None:
        raise SystemExit("the runs folder has no torn/last.pt: nothing to probe")
    synth = Synthesizer(preset_with_torn_p("paper", args.torn_p))
    rows = []
    for spec in args.data.split(","):
        check_not_test_set(spec)
        src = open_source(spec)
        for i in range(len(src)):
            clean = resize_max_side(src[i].image, args.max_side)
            for k in range(args.reps):
                aged = synth(clean, seed=derive_seed(args.seed, i, k))
                rows += [{"source": spec, "photo": i, "rep": k, **r}
                         for r in component_rows(detector, aged.image, clean, aged.mask)]
        print(f"{spec}: {len(src)} photos x {args.reps} agings, {len(rows)} components so far", flush=True)
    real, false = [r for r in rows if r["real"]], [r for r in rows if not r["real"]]
    print(f"\n{len(real)} real and {len(false)} false components (area summed over photos: "
          f"{sum(r['area'] for r in real):.3f} / {sum(r['area'] for r in false):.3f})")
    gain_real, gain_false = sum(r["fill_gain"] for r in real), sum(r["fill_gain"] for r in false)
    print(f"fill gain (mean squared error per photo, summed): real {gain_real:+.4f}, false {gain_false:+.4f}")
    print("AUC, real above false: " + ", ".join(f"{f} {auc([r[f] for r in real], [r[f] for r in false]):.3f}"
                                               for f in FEATURES))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "components": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
