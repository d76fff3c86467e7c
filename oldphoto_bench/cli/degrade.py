"""``oldphoto-bench degrade``: age clean photos with a preset; write images, damage masks and records."""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

HELP = """Age clean photos with a degradation preset.

For each input image it writes, into --out:
  <stem>.png        the degraded photo (same size as the input; grayscale in, grayscale out)
  <stem>_mask.png   the damage mask of the structured defects (0 or 255)
and appends one JSON line to records.jsonl with the operations, their parameters and the seed:
`oldphoto_bench.degrade.Synthesizer.replay(image, record)` reproduces the output bit for bit.
Image i's seed is derived from --seed and its output name, so adding files does not change the others.
A bad input is reported with its file name and skipped; the exit code is then 1. Inputs are never
written over; existing outputs are kept unless --overwrite."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..degrade import preset_names

    p = sub.add_parser("degrade", help="age clean photos with a degradation preset", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--preset", default="paper",
                   help=f"shipped preset ({', '.join(preset_names())}) or a YAML preset file (default: paper)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument("--device", default="cpu", help="torch device for the degradations: cpu or cuda (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (default: 80 megapixels)")
    p.add_argument("--workers", type=int, default=2, help="threads reading and writing files (default: 2)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(run=run)


def image_seed(base_seed: int, stem: str) -> int:
    """Per-image seed from the base seed and the output name (stable, order-independent)."""
    from ..seeding import derive_seed

    return derive_seed(base_seed, zlib.crc32(stem.encode("utf-8")))


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..degrade import Synthesizer
    from ..imageio import DEFAULT_MAX_PIXELS
    from ..provenance import write_manifest
    from .inputs import expand_inputs

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    synth = Synthesizer(args.preset)
    files, problems = expand_inputs(args.inputs)
    for _, msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
    input_paths = {f.path.resolve() for f in files}

    failed = len(problems)
    written = kept = 0
    todo = []
    for f in files:
        img_path, mask_path = out / f"{f.stem}.png", out / f"{f.stem}_mask.png"
        if img_path.resolve() in input_paths or mask_path.resolve() in input_paths:
            print(f"error: {f.path}: its output {img_path} would write over an input; choose another --out",
                  file=sys.stderr)
            failed += 1
        elif not args.overwrite and (img_path.exists() or mask_path.exists()):
            print(f"{f.path}: output {img_path} exists, kept (use --overwrite to replace it)", file=sys.stderr)
            kept += 1
        else:
            todo.append((f, img_path, mask_path))

    write_manifest(out / "manifest.json", seed=args.seed, config={"preset": synth.spec},
                   inputs=[str(f.path) for f, _, _ in todo], device=args.device)
    workers = max(1, args.workers)
    # Each worker thread reads, degrades and writes one whole image; torch ops release the GIL, so with one
    # intra-op thread per worker the cores stay busy without OpenMP threads waiting on each other.
    threads_before = torch.get_num_threads()
    if workers > 1 and args.device == "cpu":
        torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool, open(out / "records.jsonl", "a", encoding="utf-8") as rec:
            window = 2 * workers  # images in flight; results are collected (and records written) in order
            futures: dict[int, Future] = {}
            bar = tqdm(total=len(todo), unit="img", desc="degrade", disable=args.no_progress or not todo)
            for i in range(len(todo) + window):
                if i < len(todo):
                    f, img_path, mask_path = todo[i]
                    futures[i] = pool.submit(_process_one, synth, f.path, img_path, mask_path,
                                             image_seed(args.seed, f.stem), args.device, max_pixels)
                j = i - window + 1
                if 0 <= j < len(todo):
                    line, error = futures.pop(j).result()
                    if error:
                        bar.write(f"error: {error}", file=sys.stderr)
                        failed += 1
                    else:
                        rec.write(json.dumps(line) + "\n")
                        written += 1
                    bar.update(1)
            bar.close()
    finally:
        torch.set_num_threads(threads_before)
    print(f"degraded {written} image(s) into {out}" + (f", kept {kept} existing" if kept else "")
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0



def _process_one(synth, path: Path, img_path: Path, mask_path: Path, seed: int, device: str,
                 max_pixels: int) -> tuple[dict | None, str | None]:
    """Load, degrade and write one image. Returns (record line, None) or (None, error message)."""
    from ..imageio import ImageError, load_image, save_image, save_mask

    try:
        image, info = load_image(path, max_pixels)
        res = synth(image.to(device), seed)
        save_image(res.image.cpu(), img_path, grayscale=info.was_gray)
        save_mask(res.mask.cpu(), mask_path)
    except ImageError as e:
        return None, str(e)
    except (OSError, RuntimeError, ValueError) as e:
        return None, f"{path}: {e}"
    return {"input": str(path), "output": img_path.name, "mask": mask_path.name, **res.records[0]}, None
