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
    from ..imageio import DEFAULT_MAX_PIXELS, ImageError, load_image
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
    with ThreadPoolExecutor(workers) as pool, open(out / "records.jsonl", "a", encoding="utf-8") as rec_file:
        # Prefetch a few decodes ahead and encode/write in the background while the next image degrades;
        # a record line is written only once both of its files are on disk.
        loads: dict[int, Future] = {}
        pending: list[tuple[Path, Future, dict]] = []
        ahead = workers + 1

        def drain(block: bool) -> None:
            nonlocal written, failed
            while pending and (block or pending[0][1].done()):
                path, fut, line = pending.pop(0)
                try:
                    fut.result()
                except OSError as e:
                    print(f"error: {path}: cannot write output: {e}", file=sys.stderr)
                    failed += 1
                    continue
                rec_file.write(json.dumps(line) + "\n")
                written += 1

        for i in range(min(ahead, len(todo))):
            loads[i] = pool.submit(load_image, todo[i][0].path, max_pixels)
        bar = tqdm(total=len(todo), unit="img", desc="degrade", disable=args.no_progress or not todo)
        for i, (f, img_path, mask_path) in enumerate(todo):
            if i + ahead < len(todo):
                loads[i + ahead] = pool.submit(load_image, todo[i + ahead][0].path, max_pixels)
            try:
                image, info = loads.pop(i).result()
                res = synth(image.to(args.device), image_seed(args.seed, f.stem))
                fut = pool.submit(_save_pair, res.image.cpu(), res.mask.cpu(), img_path, mask_path, info.was_gray)
                line = {"input": str(f.path), "output": img_path.name, "mask": mask_path.name, **res.records[0]}
                pending.append((f.path, fut, line))
            except ImageError as e:
                print(f"error: {e}", file=sys.stderr)
                failed += 1
            except (OSError, RuntimeError) as e:
                print(f"error: {f.path}: {e}", file=sys.stderr)
                failed += 1
            drain(block=False)
            bar.update(1)
        drain(block=True)
        bar.close()
    print(f"degraded {written} image(s) into {out}" + (f", kept {kept} existing" if kept else "")
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _save_pair(image, mask, img_path: Path, mask_path: Path, grayscale: bool) -> None:
    from ..imageio import save_image, save_mask

    save_image(image, img_path, grayscale=grayscale)
    save_mask(mask, mask_path)
