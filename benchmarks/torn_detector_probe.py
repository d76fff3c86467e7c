"""Probe: a whole-photo, low-resolution detector for torn-off pieces, next to the shipped scratch detector.

Why: the shipped detector works on full-resolution tiles and never finds the inside of a torn-off piece (a
flat, paper-coloured region tens of pixels wide), yet those pieces carry most of what a mask is worth. With
the synthesizer's ground-truth mask instead of no mask, on held-out McMaster (paper preset with one kind of
damage forced on every photo, benchmarks/ablation_translation.py), the translation gains: scratches +0.19 dB,
cracks +0.35, dust +0.23, torn pieces +2.78 dB, where the shipped detector's mask gains +0.16, +0.19, 0.00
and -0.02.

What it does (three steps, each reading the previous one's file):

* ``data``: training photos (never McMaster, Kodak24, FFHQ-10 or the embedded photos) shrunk to a 512 px
  longer side, aged ``--reps`` times with the ``paper`` preset with torn pieces on half the photos
  (``--torn-p``), then shrunk to 128 x 128 (area average); label: the damage mask shrunk alike, >= 0.5
  (thin scratches and dust vanish at this size, torn pieces and wide cracks stay).
* ``train``: a small :class:`~oldphoto_bench.models.ScratchUNet` (RGB, depth 4, 8 -> 64 channels) on the
  photos at 96 x 96, focal (alpha 0.5) + Dice, Adam 1e-3 then linear decay, flips.
* ``eval``: held-out photos (default McMaster) aged with a preset (seed ``derive_seed(0, i)``); the mask is
  the shipped detector's (pipeline threshold, component filter) united with ``torn probability >= t``
  (the 96 x 96 prediction upsampled); PSNR / SSIM of ``restore`` with each mask, pixel F1 against the
  ground truth, and the share of pixels the torn net flags on undamaged photos.

    python benchmarks/torn_detector_probe.py data --out work/torn_data.pt
    python benchmarks/torn_detector_probe.py train --data work/torn_data.pt --steps 1500 --out work/torn_net.pt
    python benchmarks/torn_detector_probe.py eval --net work/torn_net.pt --thresholds 0.5,0.7,0.9

Measured (one thread, 2-core VM): data 6 min (482 photos x 8), train 17 min (0.6-0.75 s/step), eval 6 min.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN = ",".join(str(SHARED / "clean" / n) for n in ("bsds500", "cbsd68", "set14"))
SIDE, NET_SIDE = 128, 96


def torn_preset(torn_p: float) -> dict:
    from oldphoto_bench.degrade.presets import load_preset

    preset = load_preset("paper")
    preset["name"] = f"paper_torn{torn_p:g}"
    for stage in preset["stages"]:
        for group in stage["groups"]:
            if group["name"] == "torn":
                group["p"] = float(torn_p)
    return preset


def make_net():
    from oldphoto_bench.models.unet import ScratchUNet

    return ScratchUNet(in_channels=3, depth=4, base_channels=8, max_channels=64, norm="batch")


def cmd_data(args) -> None:
    from oldphoto_bench.data import check_not_test_set, open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.imageio import resize_max_side
    from oldphoto_bench.seeding import derive_seed

    check_not_test_set(args.data)
    synth, src, xs, ys, t0 = Synthesizer(torn_preset(args.torn_p)), open_source(args.data), [], [], time.time()
    for i in range(len(src)):
        clean = resize_max_side(src[i].image, 512)
        for _ in range(args.undamaged_copies):  # unaged copies: negatives with the photo's own bright areas
            xs.append(F.interpolate(clean, size=(SIDE, SIDE), mode="area").half())
            ys.append(torch.zeros(1, 1, SIDE, SIDE, dtype=torch.bool))
        for k in range(args.reps):
            aged = synth(clean, seed=derive_seed(args.seed, i, k))
            xs.append(F.interpolate(aged.image, size=(SIDE, SIDE), mode="area").half())
            ys.append(F.interpolate(aged.mask, size=(SIDE, SIDE), mode="area") >= 0.5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"x": torch.cat(xs), "y": torch.cat(ys), "data": args.data, "torn_p": args.torn_p}, args.out)
    print(f"{len(xs)} aged photos -> {args.out} ({time.time() - t0:.0f} s)")


def cmd_train(args) -> None:
    from oldphoto_bench.losses.segmentation import ScratchLoss

    parts = [torch.load(p) for p in args.data.split(",")]
    x, y = torch.cat([d["x"] for d in parts]), torch.cat([d["y"] for d in parts])
    n = len(x)
    g = torch.Generator().manual_seed(args.seed)
    net, loss_fn = make_net(), ScratchLoss(focal_alpha=0.5)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    t0, half = time.time(), args.steps // 2
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:  # constant, then linear decay to 0 (as the recipes)
            group["lr"] = args.lr * (1.0 if step < half else (args.steps - step) / (args.steps - half))
        idx = torch.randint(0, n, (args.batch,), generator=g)
        xb = F.interpolate(x[idx].float(), size=(NET_SIDE, NET_SIDE), mode="area")
        yb = (F.interpolate(y[idx].float(), size=(NET_SIDE, NET_SIDE), mode="area") >= 0.5).float()
        for dim in (-1, -2):
            if torch.rand(1, generator=g) < 0.5:
                xb, yb = xb.flip(dim), yb.flip(dim)
        loss = loss_fn(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: loss {float(loss):.4f} ({time.time() - t0:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)


@torch.no_grad()
def cmd_eval(args) -> None:
    from oldphoto_bench.data import open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.imageio import resize_max_side
    from oldphoto_bench.metrics.fidelity import psnr, ssim
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.restore.torn import torn_probability
    from oldphoto_bench.seeding import derive_seed
    from oldphoto_bench.segmentation_metrics import confusion

    net = make_net()
    net.load_state_dict(torch.load(args.net))
    net.eval()
    ths = [float(t) for t in args.thresholds.split(",")]
    restorer = Restorer(args.checkpoints, with_scratch=True, faces=False)

    def torn_prob(x: torch.Tensor) -> torch.Tensor:  # as the restore pipeline runs the shipped stage
        return torn_probability(net, x, NET_SIDE)

    def photos(spec: str, n: int) -> list[torch.Tensor]:
        src = open_source(spec)
        return [resize_max_side(src[i].image, 512) for i in range(min(n, len(src)))]

    for spec in args.undamaged.split(","):
        probs = [torn_prob(im) for im in photos(spec, args.max_images)]
        shares = " ".join(f"t{t}: {100 * statistics.fmean(float((p >= t).float().mean()) for p in probs):.2f}%"
                          for t in ths)
        print(f"undamaged {spec}: torn net flags {shares}", flush=True)
    ims = photos(args.suite, args.max_images)
    for preset in args.presets.split(","):
        synth = Synthesizer(preset)
        names = ["none", "detector", "ground truth", *(f"detector + torn@{t}" for t in ths)]
        scores: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
        conf: dict = {}
        for i, im in enumerate(ims):
            aged = synth(im, seed=derive_seed(0, i))
            det = restorer.mask_from_probability(restorer.detect(aged.image))
            tp = torn_prob(aged.image)
            masks = {"none": torch.zeros_like(aged.mask), "detector": det, "ground truth": aged.mask}
            for t in ths:
                masks[f"detector + torn@{t}"] = torch.maximum(det, (tp >= t).float())
            for k, m in masks.items():
                c = confusion(m > 0.5, aged.mask)
                conf[k] = c if k not in conf else conf[k] + c
                out = restorer.restore(aged.image, mask=m).image
                scores[k].append((float(psnr(out, im)[0]), float(ssim(out, im)[0])))
        print(f"preset {preset} on {len(ims)} photos of {args.suite}:")
        for k in names:
            print(f"  {k:22} PSNR {statistics.fmean(s[0] for s in scores[k]):.2f} dB, SSIM "
                  f"{statistics.fmean(s[1] for s in scores[k]):.3f}, mask F1 {conf[k].f1:.3f} "
                  f"(P {conf[k].precision:.2f}, R {conf[k].recall:.2f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("data", help="age and shrink training photos")
    p.add_argument("--data", default=TRAIN, help="training photos (test sets are refused)")
    p.add_argument("--reps", type=int, default=8, help="agings per photo (default 8)")
    p.add_argument("--torn-p", type=float, default=0.5, help="probability of torn pieces (paper: 0.15)")
    p.add_argument("--undamaged-copies", type=int, default=0, help="unaged copies per photo, all-negative labels")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("train", help="train the low-resolution detector")
    p.add_argument("--data", required=True, help="one or more data files, comma-separated")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("eval", help="masks, F1 and PSNR on held-out photos")
    p.add_argument("--net", type=Path, required=True)
    p.add_argument("--checkpoints", default=None, help="runs folder (default: the shipped checkpoints)")
    p.add_argument("--suite", default=str(SHARED / "clean" / "mcmaster"), help="held-out clean photos")
    p.add_argument("--undamaged", default=",".join(str(SHARED / s) for s in
                                                   ("clean/mcmaster", "faces/deepface", "old/bopbtl/old")))
    p.add_argument("--presets", default="paper")
    p.add_argument("--thresholds", default="0.5,0.7,0.9")
    p.add_argument("--max-images", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if getattr(args, "checkpoints", "") is None:
        from oldphoto_bench.restore import default_checkpoints

        args.checkpoints = default_checkpoints()
    {"data": cmd_data, "train": cmd_train, "eval": cmd_eval}[args.step](args)


if __name__ == "__main__":
    main()
