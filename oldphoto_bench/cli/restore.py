"""``oldphoto-bench restore``: restore old photos (scratch detection, global restoration, faces)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HELP = """Restore old photos with the trained networks of a checkpoint folder.

Stages: 1 scratch detection (--with-scratch: a U-Net at full resolution, in overlapping tiles)
-> 2 global restoration (encode with VAE_A, map the latent with the scratch mask, decode with VAE_B)
-> 3 faces (detected and enhanced; without a face checkpoint only detected and listed; --no-faces skips).

For each input image it writes, into --out:
  masks/<stem>.png    the scratch mask (0 or 255; only with --with-scratch)
  stage1/<stem>.png   the global restoration (before faces)
  final/<stem>.png    the final result
and DIR/report.json for the whole run (rewritten at the end, atomically):
  {"images": [{"input": PATH, "output": PATH, "status": "ok" | "error" | "kept", "error": MESSAGE | null,
               "faces": [...], "seconds": S, ...}]}
Outputs have the input's size and orientation (EXIF applied); grayscale in, grayscale out. Any size works:
large photos run in bounded memory (the detector in blended tiles, the VAEs and the mapping layer by layer).
A bad input is reported with its file name and skipped; the exit code is then 1. Inputs are never written
over; an image whose outputs exist is kept as it is (status "kept") unless --overwrite.
Checkpoints: without --checkpoints, restore uses %(default_runs)s,
trained with the tiny recipe (`oldphoto-bench ship --list` says on what). --checkpoints RUNS uses your
own, from `oldphoto-bench train STAGE`: vae-a, vae-b and mapping, scratch with --with-scratch, face
(optional) for the face enhancer. A missing or mismatched checkpoint is named with the command that
trains it, or for the shipped ones `%(retrain)s` (exit code 2)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..pretrained import RETRAIN_COMMAND, SHIPPED_DESCRIPTION, is_shipped
    from ..restore.restorer import DEFAULT_CHECKPOINTS

    default_runs = SHIPPED_DESCRIPTION if is_shipped(DEFAULT_CHECKPOINTS) else str(DEFAULT_CHECKPOINTS)

    p = sub.add_parser(
        "restore",
        help="restore old photos (scratches, global restoration, faces)",
        description=HELP % {"default_runs": default_runs, "retrain": RETRAIN_COMMAND},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        metavar="RUNS",
        help=f"folder of trained stages (default: {default_runs})",
    )
    p.add_argument("--with-scratch", action="store_true", help="detect scratches and restore with their mask")
    p.add_argument("--no-faces", action="store_true", help="skip stage 3 (face detection and enhancement)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu or cuda (default: cpu)")
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="detector tile side in pixels (>= 64; also bounds the VAE/mapping bands); "
        "0: no tiling; default: automatic",
    )
    p.add_argument(
        "--face-backend",
        default="auto",
        choices=("auto", "dlib", "cascade"),
        help="face detector (default: auto = dlib when installed, else cascade)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse images with more pixels than this (default: 80 megapixels)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(run=run)


def _jsonable(obj):
    """Numbers and arrays from numpy/torch as plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    return obj


def _write_report(path: Path, entries: list[dict]) -> None:
    from ..provenance import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(_jsonable({"images": entries}), indent=1) + "\n").encode())


def _outputs(out: Path, stem: str, with_scratch: bool) -> dict[str, Path]:
    paths = {"final": out / "final" / f"{stem}.png", "stage1": out / "stage1" / f"{stem}.png"}
    if with_scratch:
        paths["mask"] = out / "masks" / f"{stem}.png"
    return paths


def _restore_one(restorer, path: Path, paths: dict[str, Path], max_pixels: int) -> dict:
    """Load, restore and write one image -> the report fields of a success."""
    from ..imageio import load_image, save_image, save_mask

    image, info = load_image(path, max_pixels)
    result = restorer.restore(image, grayscale=True if info.was_gray else None)
    if "mask" in paths and result.mask is not None:
        save_mask(result.mask, paths["mask"])
    save_image(result.stages["global"], paths["stage1"], grayscale=info.was_gray)
    save_image(result.image, paths["final"], grayscale=info.was_gray)
    d = result.details
    return {
        "faces": d["faces"],
        "stage_seconds": {k: round(v, 4) for k, v in d["seconds"].items()},
        "width": info.width,
        "height": info.height,
        "was_gray": info.was_gray,
        "exif_transposed": info.exif_transposed,
        "mask_fraction": d["mask_fraction"],
        "notes": d["notes"],
    }


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..imageio import DEFAULT_MAX_PIXELS, ImageError
    from ..provenance import write_manifest
    from ..restore import Restorer
    from .inputs import expand_inputs

    if args.max_pixels is not None and args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be positive, got {args.max_pixels}")
    files, problems = expand_inputs(args.inputs)
    entries: list[dict] = []
    for raw, msg in problems:
        print(f"error: {msg}", file=sys.stderr)
        entries.append(
            {"input": raw, "output": None, "status": "error", "error": msg, "faces": [], "seconds": 0.0}
        )
    restorer = Restorer(
        args.checkpoints,
        device=args.device,
        with_scratch=args.with_scratch,
        faces=not args.no_faces,
        tile=args.tile,
        face_backend=args.face_backend,
    )
    for note in restorer.notes:
        print(f"note: {note}", file=sys.stderr)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
    input_paths = {f.path.resolve() for f in files}
    write_manifest(
        out / "manifest.json",
        config={
            "checkpoints": str(restorer.runs),
            "with_scratch": args.with_scratch,
            "faces": not args.no_faces,
            "tile": args.tile,
            "device": args.device,
            "face_backend": args.face_backend,
            "threshold": restorer.threshold,
            "dilation": restorer.dilation,
        },
        inputs=[str(f.path) for f in files],
    )

    counts = {"ok": 0, "error": len(problems), "kept": 0}
    bar = tqdm(files, unit="img", desc="restore", disable=args.no_progress or not files)
    for f in bar:
        paths = _outputs(out, f.stem, args.with_scratch)
        entry = {
            "input": str(f.path),
            "output": str(paths["final"]),
            "status": "ok",
            "error": None,
            "faces": [],
            "seconds": 0.0,
            "stage1": str(paths["stage1"]),
            "mask": str(paths["mask"]) if "mask" in paths else None,
        }
        existing = [p for p in paths.values() if p.exists()]
        t0 = time.perf_counter()
        if any(p.resolve() in input_paths for p in paths.values()):
            entry.update(
                status="error", error=f"{f.path}: an output would write over an input; choose another --out"
            )
        elif existing and not args.overwrite:
            kept = str(paths["final"]) if paths["final"].exists() else None
            entry.update(status="kept", error=None, output=kept)
            bar.write(
                f"{f.path}: output {existing[0]} exists, kept (use --overwrite to replace it)",
                file=sys.stderr,
            )
        else:
            try:
                entry.update(_restore_one(restorer, f.path, paths, max_pixels))
            except ImageError as e:
                entry.update(status="error", error=str(e))
            except (OSError, RuntimeError, ValueError) as e:
                entry.update(status="error", error=f"{f.path}: {e}")
            except Exception as e:  # a bad file must not end the run: report it with its type and go on
                entry.update(status="error", error=f"{f.path}: {type(e).__name__}: {e}")
        if entry["status"] == "error":
            entry.update(output=None, stage1=None, mask=None)
            bar.write(f"error: {entry['error']}", file=sys.stderr)
        entry["seconds"] = round(time.perf_counter() - t0, 4)
        counts[entry["status"]] += 1
        entries.append(entry)
        _write_report(report, entries)  # after every image, so an interrupted run leaves a report too
    bar.close()
    _write_report(report, entries)
    print(
        f"restored {counts['ok']} image(s) into {out}"
        + (f", kept {counts['kept']} existing" if counts["kept"] else "")
        + (f", {counts['error']} failed" if counts["error"] else "")
        + f"; report: {report}",
        file=sys.stderr,
    )
    return 1 if counts["error"] else 0
