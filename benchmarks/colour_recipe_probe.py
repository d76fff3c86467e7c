"""Compare recipes of the global colour stage in minutes: age the training photos once, then train on the bank.

Training the ``colour`` stage ages every photo again and again (most of its step time); a recipe comparison
does not need that. ``bank`` ages each training photo ``--agings`` times exactly as the stage does
(:class:`~oldphoto_bench.train.colour_stage.AgedThumbnails`: the whole photo at ``--side`` px, grayscale
targets for grayscale agings, ``--clean-fraction`` left unaged) and keeps the thumbnails; ``train`` fits a
:class:`~oldphoto_bench.models.colour.GlobalColourNet` on a bank (Adam, constant learning rate for half the
steps, then linear decay to 0, as the stage's schedule) and scores it as ``eval_colour_stage.py`` does:
held-out photos shrunk to ``--max-side``, aged with the benchmark's per-photo seeds, mean PSNR of the aged
photo before and after the correction, and of a clean photo through it (capped at 60 dB)::

    python benchmarks/colour_recipe_probe.py bank --out runs/colour_bank.pt --agings 24
    python benchmarks/colour_recipe_probe.py train --bank runs/colour_bank.pt --steps 8000 \\
        --model '{"hidden": 128, "head_layers": 2, "standardize": true}' --lr 1e-3 --json runs/big.json

``bank --holdout N`` leaves every N-th training photo out of the bank, and ``train`` then scores those
photos too: a held-out set drawn from the same collections as the training photos, next to McMaster and
faces/deepface.

Measured on the 2-core machine: a bank of 482 photos x 24 agings in about 2 minutes; 8000 steps of the
wider head below in about 3.5 minutes. Figures in ``oldphoto_bench/configs/train/tiny.yaml`` (stage ``colour``).
Use held-out sources only (the tiny recipe trains this stage on bsds500, cbsd68 and set14).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from oldphoto_bench.data import open_source
from oldphoto_bench.train.data import CachedSource, SubsetSource

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN_SETS = ",".join(str(SHARED / "clean" / s) for s in ("bsds500", "cbsd68", "set14"))
HELD_OUT = f"{SHARED / 'clean' / 'mcmaster'},{SHARED / 'faces' / 'deepface'}"


def split_every(source, every: int):
    """``(kept, held_out)``: photo ``i`` is held out when ``i % every == every - 1`` (``every`` 0: none)."""
    held = {i for i in range(len(source)) if every and i % every == every - 1}
    kept = [i for i in range(len(source)) if i not in held]
    return SubsetSource(source, kept), SubsetSource(source, sorted(held))


def make_bank(data, agings: int, preset: str = "paper", side: int = 192, size: int = 64,
              clean_fraction: float = 0.15, seed: int = 0, progress: bool = True,
              holdout: int = 0) -> dict[str, torch.Tensor]:
    """``{"clean", "aged": (P * agings, 3, size, size)}``: ``agings`` independent agings of each photo of
    ``data`` (a data source spec or a :class:`~oldphoto_bench.data.sources.Source`), without the photos
    :func:`split_every` holds out when ``holdout`` > 0."""
    from oldphoto_bench.train.colour_stage import AgedThumbnails

    src = open_source(data) if isinstance(data, str) else data
    src = CachedSource(split_every(src, holdout)[0] if holdout else src)  # decode each photo once
    ds = AgedThumbnails(src, preset, size, side, seed, True, clean_fraction, reuse=1)
    clean, aged = [], []
    for k in range(int(agings)):
        ds.set_epoch(k)  # reuse 1: a new ageing of every photo per epoch
        for i in range(len(ds)):
            _, c, a, _, _ = ds._thumbnails(i)
            clean.append(c)
            aged.append(a)
        if progress:
            print(f"ageing {k + 1}/{agings}: {len(clean)} thumbnails", flush=True)
    return {"clean": torch.stack(clean), "aged": torch.stack(aged)}


def train_on_bank(bank: dict[str, torch.Tensor], steps: int, model: dict, lr: float = 2e-3, loss: str = "l1",
                  batch_size: int = 16, seed: int = 0, progress: bool = True) -> torch.nn.Module:
    """A :class:`GlobalColourNet` (``model``: its constructor arguments) fitted on ``bank``; eval mode."""
    from oldphoto_bench.models.colour import GlobalColourNet, apply_colour
    from oldphoto_bench.train.colour_stage import COLOUR_LOSSES

    if loss not in COLOUR_LOSSES:
        raise KeyError(f"unknown loss {loss!r}; valid: {', '.join(COLOUR_LOSSES)}")
    net = GlobalColourNet(**{"size": bank["aged"].shape[-1], **model, "init_seed": seed})
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    half = steps // 2  # the stage's schedule: constant for half the run, then linear decay to 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < half else max(0.0, (steps - s) / max(1, steps - half)))
    gen = torch.Generator().manual_seed(seed)
    n, t0 = len(bank["aged"]), time.perf_counter()
    for step in range(steps):
        idx = torch.randint(n, (batch_size,), generator=gen)
        x, y = bank["aged"][idx], bank["clean"][idx]
        if torch.rand(1, generator=gen).item() < 0.5:  # the stage's random horizontal flip
            x, y = x.flip(-1), y.flip(-1)
        value = COLOUR_LOSSES[loss](apply_colour(x, net(x)), y)
        opt.zero_grad()
        value.backward()
        opt.step()
        sched.step()
        if progress and (step % 1000 == 0 or step == steps - 1):
            print(f"step {step}: loss {value.item():.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return net.eval()


def score(net: torch.nn.Module, data, preset: str = "paper", seed: int = 0, max_side: int = 512) -> dict:
    """Per source: mean PSNR of the aged photos, after the correction, and of clean photos through it
    (``eval_colour_stage.score_photos``). ``data``: a comma-separated spec, or a dict ``{name: source}``."""
    from eval_colour_stage import score_photos

    from oldphoto_bench.degrade import Synthesizer

    synth, out = Synthesizer(preset), {}
    sources = data if isinstance(data, dict) else {s: open_source(s) for s in data.split(",") if s}
    for spec, src in sources.items():
        rows = score_photos({"net": net}, src, synth, seed, max_side)
        mean = {k: statistics.fmean(r[k] for r in rows) for k in ("aged", "net aged", "net clean")}
        out[spec] = {"photos": len(rows), "aged": mean["aged"], "corrected": mean["net aged"], "clean": mean["net clean"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bank", help="age the training photos into a bank of thumbnails")
    b.add_argument("--out", required=True, type=Path, help="bank file to write (.pt); never overwritten")
    b.add_argument("--data", default=TRAIN_SETS, help="training photo sources (default: the stage's)")
    b.add_argument("--agings", type=int, default=24, help="agings per photo (default: 24)")
    b.add_argument("--preset", default="paper")
    b.add_argument("--side", type=int, default=192, help="photos aged at this longer side (tiny: 192)")
    b.add_argument("--clean-fraction", type=float, default=0.15, help="share left unaged (tiny: 0.15)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--holdout", type=int, default=0,
                   help="leave out every N-th photo of --data (index %% N == N-1); train scores them (default: 0, none)")
    t = sub.add_parser("train", help="fit a colour network on banks and score it on held-out photos")
    t.add_argument("--bank", required=True, help="comma-separated bank files")
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--model", default="{}", help="JSON of GlobalColourNet arguments over tiny's")
    t.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (tiny: 2e-3)")
    t.add_argument("--loss", default="l1", help="l1 (tiny) or mse")
    t.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed")
    t.add_argument("--eval", default=HELD_OUT, help="held-out photo sources (default: McMaster, faces/deepface)")
    t.add_argument("--json", type=Path, default=None, help="write the settings and scores here")
    t.add_argument("--save", type=Path, default=None, help="write the network's state_dict here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.command == "bank":
        if args.out.exists():
            raise SystemExit(f"{args.out} exists; choose another --out")
        bank = make_bank(args.data, args.agings, args.preset, args.side, clean_fraction=args.clean_fraction,
                         seed=args.seed, holdout=args.holdout)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**bank, "settings": {k: str(v) for k, v in vars(args).items()}}, args.out)
        return
    banks = [torch.load(p, weights_only=True) for p in args.bank.split(",")]
    bank = {k: torch.cat([b[k] for b in banks]) for k in ("clean", "aged")}
    model = {"base_channels": 16, "hidden": 64, "n_down": 4, **json.loads(args.model)}
    t0 = time.perf_counter()
    net = train_on_bank(bank, args.steps, model, args.lr, args.loss, seed=args.seed)
    sources = {s: open_source(s) for s in args.eval.split(",") if s}
    for b in banks:  # the photos each bank held out of its training data
        every = int(b["settings"].get("holdout", "0"))
        if every:
            sources[f"held out of {b['settings']['data']} (every {every})"] = split_every(open_source(b["settings"]["data"]), every)[1]
    scores = score(net, sources)
    for spec, s in scores.items():
        print(f"{spec} ({s['photos']} photos): aged {s['aged']:.2f} -> corrected {s['corrected']:.2f} dB "
              f"({s['corrected'] - s['aged']:+.2f}), clean through it {s['clean']:.1f} dB")
    if args.save:
        torch.save(net.state_dict(), args.save)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "model": model,
                                         "seconds": time.perf_counter() - t0, "scores": scores}, indent=2) + "\n")


if __name__ == "__main__":
    main()
