"""``oldphoto-bench degrade``: age clean photos with a preset; write images, damage masks and records."""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

RECORDS = "records.jsonl"

HELP = """Age clean photos with a degradation preset.

For each input image it writes, into --out:
  <stem>.png        the degraded photo (same size as the input; grayscale in, grayscale out)
  <stem>_mask.png   the damage mask of the structured defects (0 or 255)
and appends one JSON line to records.jsonl with the operations, their parameters and the seed:
`oldphoto_bench.degrade.Synthesizer.replay(image, record)` reproduces the output bit for bit.
Image i's seed is derived from --seed and its output name, so adding files does not change the others.
A bad input is reported with its file name and skipped; the exit code is then 1. An input that is one of
the outputs (a photo named manifest.json, a photo in --out named like an output) is refused before anything
is written (exit code 2). Existing outputs are kept unless --overwrite; records.jsonl keeps one line per
image (the record of the file on disk) and manifest.json keeps earlier runs under "earlier_runs". A rerun
after an interruption finishes the images that have no complete output."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import add_device_argument, preset_names

    p = sub.add_parser("degrade", help="age clean photos with a degradation preset", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--preset", default="paper",
                   help=f"shipped preset ({', '.join(preset_names())}) or a YAML preset file (default: paper)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    add_device_argument(p, "torch device for the degradations")
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
    from ..provenance import earlier_runs, write_manifest
    from .inputs import expand_inputs
    from .outputs import refuse_inputs_among_outputs
    from .records import RecordLog

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    synth = Synthesizer(args.preset)
    files, problems = expand_inputs(args.inputs)
    out: Path = args.out
    outputs = {f.stem: (out / f"{f.stem}.png", out / f"{f.stem}_mask.png") for f in files}
    refuse_inputs_among_outputs(files, [out / "manifest.json", out / RECORDS,
                                        *(p for pair in outputs.values() for p in pair)])
    log = RecordLog(out / RECORDS)
    earlier_runs(out / "manifest.json")  # refuses a manifest.json that is not ours before anything is written
    for _, msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS

    failed = len(problems)
    counts = {"written": 0, "recorded": 0, "kept": 0}
    todo = []
    for f in files:
        img_path, mask_path = outputs[f.stem]
        complete = img_path.exists() and mask_path.exists()
        if log.has(img_path.name) and complete and not args.overwrite:
            print(f"{f.path}: output {img_path} exists, kept (use --overwrite to replace it)", file=sys.stderr)
            counts["kept"] += 1
        elif args.overwrite or log.has(img_path.name) or not (img_path.exists() or mask_path.exists()):
            todo.append((f, img_path, mask_path, "replace"))  # ours (recorded) but unfinished, or new
        else:
            todo.append((f, img_path, mask_path, "verify"))  # outputs without a record: kept unless they match

    write_manifest(out / "manifest.json", seed=args.seed, config={"preset": synth.spec},
                   inputs=[str(f.path) for f, *_ in todo], device=args.device)
    workers = max(1, args.workers)
    # Each worker thread reads, degrades and writes one whole image; torch ops release the GIL, so with one
    # intra-op thread per worker the cores stay busy without OpenMP threads waiting on each other.
    threads_before = torch.get_num_threads()
    if workers > 1 and args.device == "cpu":
        torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers)
    try:
        window = 2 * workers  # images in flight; results are collected (and reported) in order
        futures: dict[int, Future] = {}
        bar = tqdm(total=len(todo), unit="img", desc="degrade", disable=args.no_progress or not todo)
        for i in range(len(todo) + window):
            if i < len(todo):
                f, img_path, mask_path, mode = todo[i]
                futures[i] = pool.submit(_process_one, synth, log, f.path, img_path, mask_path,
                                         image_seed(args.seed, f.stem), args.device, max_pixels, mode)
            j = i - window + 1
            if 0 <= j < len(todo):
                status, message = futures.pop(j).result()
                if status == "failed":
                    bar.write(f"error: {message}", file=sys.stderr)
                    failed += 1
                else:
                    if message:
                        bar.write(message, file=sys.stderr)
                    counts[status] += 1
                bar.update(1)
        bar.close()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # images being written finish; queued ones never start
        raise
    finally:
        pool.shutdown(wait=True)
        torch.set_num_threads(threads_before)
        log.compact([img_path.name for _, img_path, _, _ in todo])
    print(f"degraded {counts['written']} image(s) into {out}"
          + (f", recorded {counts['recorded']} found without a record" if counts["recorded"] else "")
          + (f", kept {counts['kept']} existing" if counts["kept"] else "")
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _same_pixels(existing: Path, write) -> bool:
    """Whether ``write(path)`` would write the pixels ``existing`` holds (written to a hidden file beside it)."""
    import numpy as np
    from PIL import Image

    from ..provenance import temp_file

    fd, tmp = temp_file(existing.parent, existing.name, suffix=".png")
    os.close(fd)
    try:
        write(tmp)
        with Image.open(existing) as a, Image.open(tmp) as b:
            return a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    except OSError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _process_one(synth, log, path: Path, img_path: Path, mask_path: Path, seed: int, device: str,
                 max_pixels: int, mode: str) -> tuple[str, str | None]:
    """Load, degrade and write one image -> (status, message): written, recorded (existing outputs without
    a record matched, the record was added), kept (they did not match) or failed.

    The record is appended before the image is written and the image deleted before a new record is
    appended: whenever the process stops, an image on disk is described by the last record of its name."""
    from ..imageio import ImageError, load_image, save_image, save_mask

    try:
        image, info = load_image(path, max_pixels)
        res = synth(image.to(device), seed)
        record = {"input": str(path), "output": img_path.name, "mask": mask_path.name, **res.records[0]}
        writers = {img_path: lambda p: save_image(res.image.cpu(), p, grayscale=info.was_gray),
                   mask_path: lambda p: save_mask(res.mask.cpu(), p)}
        if mode == "verify":
            if not all(_same_pixels(p, w) for p, w in writers.items() if p.exists()):
                return "kept", (f"{path}: output {img_path} exists without a record in {RECORDS} and differs "
                                "from this run's; kept (use --overwrite to replace it)")
            log.append(record)
            for p, w in writers.items():
                if not p.exists():
                    w(p)
            return "recorded", None
        for p in writers:
            p.unlink(missing_ok=True)
        log.append(record)
        for p, w in writers.items():
            w(p)
    except ImageError as e:
        return "failed", str(e)
    except (OSError, RuntimeError, ValueError) as e:
        return "failed", f"{path}: {e}"
    return "written", None
