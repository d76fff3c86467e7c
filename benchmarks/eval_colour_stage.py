"""PSNR of the global colour correction alone (``RUNS/colour``) on aged and on clean photos.

Each photo of each ``--data`` source is shrunk to ``--max-side`` (the benchmark's default 512), aged with
``--preset`` (seed ``derive_seed(--seed, i)``, as ``bench`` does), and corrected by each run's colour
network. Prints, per source and run, the mean PSNR (RGB, data range 1) against the clean photo of

* ``aged``: the aged photo, before and after the correction (what the stage gains);
* ``clean``: the clean photo itself through the correction (how much it recolours a photo needing nothing;
  an identity scores infinity, so the mean is taken over min(PSNR, 60 dB));
* ``oracle``: the aged photo after the per-photo least-squares affine colour map to the clean photo (the
  ceiling of any global affine correction; it sees the answer);
* with ``--strengths s1,s2,...``: the aged photo corrected by each network's map scaled away from or towards
  the identity, ``I + s ([A|b] - I)`` (``s`` 1: the network; below 1 a weaker, above 1 a stronger correction),
  which tells whether the stage under- or over-corrects on average.

Use sources the colour stage was not trained on (the tiny recipe trains on bsds500, cbsd68 and set14;
McMaster and faces/deepface are held out for choosing recipes; Kodak24 is a test set)::

    python benchmarks/eval_colour_stage.py --checkpoints oldphoto_bench/pretrained/tiny RUNS2 \\
        --data ../shared/data/clean/mcmaster,../shared/data/faces/deepface --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CAP_DB = 60.0


def oracle_affine(aged: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The least-squares ``(1, 3, 4)`` affine map taking ``aged`` (1, 3, H, W) closest to ``clean``."""
    from oldphoto_bench.models.colour import fit_colour

    return fit_colour(aged.double(), clean.double(), ridge=0.0).float()


@torch.no_grad()
def scaled_affine(affine: torch.Tensor, strength: float) -> torch.Tensor:
    """``I + strength (affine - I)`` for ``(N, 3, 4)`` affine colour maps (``I``: the identity map ``[I | 0]``)."""
    identity = torch.eye(3, 4, dtype=affine.dtype, device=affine.device)
    return identity + float(strength) * (affine - identity)


def score_photos(nets: dict, source, synth, seed: int = 0, max_side: int = 512,
                 strengths: tuple[float, ...] = ()) -> list[dict]:
    """One row per photo of ``source``: shrunk to ``max_side``, aged by ``synth`` with seed
    ``derive_seed(seed, i)``; PSNR of the aged photo (``aged``), of its oracle affine match (``oracle``), and per
    colour network ``name`` of ``nets`` the corrected aged photo (``"<name> aged"``) and the clean photo through
    the correction (``"<name> clean"``, at most :data:`CAP_DB`), and per ``strengths`` value ``s`` the aged photo
    corrected by the scaled map (``"<name> aged x<s>"``, :func:`scaled_affine`)."""
    from oldphoto_bench.imageio import resize_max_side
    from oldphoto_bench.metrics.fidelity import psnr
    from oldphoto_bench.models.colour import apply_colour
    from oldphoto_bench.seeding import derive_seed

    rows = []
    for i in range(len(source)):
        clean = resize_max_side(source[i].image, max_side)
        aged = synth(clean, seed=derive_seed(seed, i)).image
        row = {"image": source[i].name, "aged": float(psnr(aged, clean)[0]),
               "oracle": float(psnr(apply_colour(aged, oracle_affine(aged, clean)), clean)[0])}
        for name, net in nets.items():
            row[f"{name} aged"] = float(psnr(net.correct(aged), clean)[0])
            row[f"{name} clean"] = min(CAP_DB, float(psnr(net.correct(clean), clean)[0]))
            if strengths:
                affine = net(aged)
                for s in strengths:
                    row[f"{name} aged x{s:g}"] = float(psnr(apply_colour(aged, scaled_affine(affine, s)), clean)[0])
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", required=True, nargs="+", type=Path, help="runs folders with colour/last.pt")
    ap.add_argument("--data", default=f"{SHARED / 'clean' / 'mcmaster'},{SHARED / 'faces' / 'deepface'}",
                    help="comma-separated clean photo sources (default: McMaster and faces/deepface)")
    ap.add_argument("--preset", default="paper", help="degradation preset (default: paper)")
    ap.add_argument("--seed", type=int, default=0, help="base seed of the ageing (default: 0)")
    ap.add_argument("--max-side", type=int, default=512, help="downscale so max(H, W) <= this (default: 512)")
    ap.add_argument("--strengths", default="", help="comma-separated strengths s: also score I + s (A - I)")
    ap.add_argument("--json", type=Path, default=None, help="write per-photo and mean figures here")
    args = ap.parse_args()
    strengths = tuple(float(v) for v in args.strengths.split(",") if v.strip())

    from oldphoto_bench.data import open_source
    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.train.artifacts import load_colour

    torch.set_num_threads(1)
    nets = {str(r): load_colour(r) for r in args.checkpoints}
    synth = Synthesizer(args.preset)
    out: dict = {"preset": args.preset, "seed": args.seed, "max_side": args.max_side, "sources": {}}
    t0 = time.perf_counter()
    for spec in [s for s in args.data.split(",") if s]:
        rows = score_photos(nets, open_source(spec), synth, args.seed, args.max_side, strengths)
        means = {k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k != "image"}
        out["sources"][spec] = {"photos": len(rows), "mean": means, "per_photo": rows}
        print(f"{spec} ({len(rows)} photos): aged {means['aged']:.2f} dB, oracle affine {means['oracle']:.2f} dB")
        for name in nets:
            print(f"  {name}: aged -> corrected {means[f'{name} aged']:.2f} dB "
                  f"({means[f'{name} aged'] - means['aged']:+.2f}), clean through it {means[f'{name} clean']:.1f} dB",
                  flush=True)
            if strengths:
                print("    scaled: " + ", ".join(f"x{v:g} {means[f'{name} aged x{v:g}']:.2f} dB" for v in strengths))
    out["seconds"] = time.perf_counter() - t0
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
