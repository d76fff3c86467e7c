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
and DIR/report.json for the folder (rewritten atomically after every image):
  {"images": [{"input": PATH, "stem": NAME, "output": PATH, "status": "ok" | "error" | "kept",
               "error": MESSAGE | null, "faces": [...], "seconds": S, ...}]}
A rerun into the same folder replaces the entries of the images it processes and keeps the others;
manifest.json keeps the earlier runs under "earlier_runs".
Outputs have the input's size and orientation (EXIF applied); grayscale in, grayscale out. Any size works:
large photos run in bounded memory (the detector in blended tiles, the VAEs and the mapping layer by layer).
A bad input is reported with its file name and skipped; the exit code is then 1. An input that is one of
the outputs (a photo named report.json, a photo inside --out/final) is refused before anything is written
(exit code 2). An image whose final output exists is kept as it is (status "kept", its earlier entry kept)
unless --overwrite; one without it (an interrupted run) is restored again.
Checkpoints: without --checkpoints, restore uses %(default_runs)s,
trained with the tiny recipe (`oldphoto-bench ship --list` says on what). --checkpoints RUNS uses your
own, from `oldphoto-bench train STAGE`: vae-a, vae-b and mapping, scratch with --with-scratch (and torn,
optional, whose torn-piece mask is united with the scratch mask), face (optional) for the face enhancer. A missing or mismatched checkpoint is named with the command that
trains it, or for the shipped ones `%(retrain)s` (exit code 2)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..pretrained import RETRAIN_COMMAND, SHIPPED_DESCRIPTION
    from .choices import FACE_BACKEND_HELP, FACE_BACKENDS, add_device_argument

    default_runs = SHIPPED_DESCRIPTION  # = oldphoto_bench.restore.default_checkpoints()

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
    p.add_argument(
        "--mask-fill",
        default="telea",
        choices=("telea", "none"),  # restore.inpaint.MASK_FILLS (not imported: --help stays torch-free)
        help="with --with-scratch: fill the detected scratches (grown by 1 px) before the translation: "
        "telea (OpenCV inpainting; default) or none (the mask only steers the nonlocal block, as released)",
    )
    p.add_argument(
        "--guide-radius",
        type=int,
        default=None,
        metavar="R",
        help="radius of the guided filter that ends the global stage: the decoded image re-fitted, in (2R+1)^2 "
        "windows, onto the colour-corrected input's edges; 0: off (the decoder's output, as released); "
        "default: the pipeline's (oldphoto_bench.restore.guided.GUIDE_RADIUS)",
    )
    p.add_argument(
        "--guide-eps",
        type=float,
        default=None,
        metavar="EPS",
        help="variance below which a window counts as flat for the guided filter (default: the pipeline's)",
    )
    p.add_argument(
        "--detail",
        type=float,
        default=0.0,
        metavar="B",
        help="add back B (0-1) of the input's fine detail (texture, fine edges, grain) after the global stage; "
        "0.5 keeps real prints about as sharp as their input but brings back half their grain (default: 0)",
    )
    p.add_argument("--no-faces", action="store_true", help="skip stage 3 (face detection and enhancement)")
    add_device_argument(p)
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
        choices=FACE_BACKENDS,
        metavar="NAME",
        help=FACE_BACKEND_HELP,
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


def _entry_key(entry: dict) -> tuple[str, str]:
    """Report entries describe output files, so an image's entry is found by its output stem."""
    if entry.get("stem"):
        return ("stem", entry["stem"])
    named = entry.get("output") or entry.get("stage1")
    return ("stem", Path(named).stem) if named else ("input", str(entry.get("input")))


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
    from ..provenance import earlier_runs, write_manifest
    from ..restore import Restorer
    from .inputs import expand_inputs
    from .outputs import load_entries, merge_entries, refuse_inputs_among_outputs

    if args.max_pixels is not None and args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be positive, got {args.max_pixels}")
    files, problems = expand_inputs(args.inputs)
    out: Path = args.out
    report = out / "report.json"
    outputs = {f.stem: _outputs(out, f.stem, args.with_scratch) for f in files}
    refuse_inputs_among_outputs(files, [out / "manifest.json", report,
                                        *(p for paths in outputs.values() for p in paths.values())])
    earlier = [e for e in load_entries(report, "images") if isinstance(e, dict)]
    earlier_by_key = {_entry_key(e): e for e in earlier}
    earlier_runs(out / "manifest.json")  # refuses a manifest.json that is not ours before anything is written
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
        mask_fill=args.mask_fill,
        detail=args.detail,
        **{k: v for k, v in (("guide_radius", args.guide_radius), ("guide_eps", args.guide_eps)) if v is not None},
    )
    for note in restorer.notes:
        print(f"note: {note}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    max_pixels = args.max_pixels or DEFAULT_MAX_PIXELS
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
            "mask_fill": restorer.mask_fill,
            "fill_dilation": restorer.fill_dilation,
            "guide_radius": restorer.guide_radius,
            "guide_eps": restorer.guide_eps,
            "detail": restorer.detail,
            "min_component": restorer.min_component,
            "torn_threshold": restorer.torn_threshold,
            "torn_component_prob": restorer.damage.torn_component_prob if restorer.torn is not None else None,
        },
        inputs=[str(f.path) for f in files],
    )

    counts = {"ok": 0, "error": len(problems), "kept": 0}
    bar = tqdm(files, unit="img", desc="restore", disable=args.no_progress or not files)
    for f in bar:
        paths = outputs[f.stem]
        entry = {
            "input": str(f.path),
            "stem": f.stem,
            "output": str(paths["final"]),
            "status": "ok",
            "error": None,
            "faces": [],
            "seconds": 0.0,
            "stage1": str(paths["stage1"]),
            "mask": str(paths["mask"]) if "mask" in paths else None,
        }
        t0 = time.perf_counter()
        kept = paths["final"].exists() and not args.overwrite
        if kept:
            before = earlier_by_key.get(_entry_key(entry))
            if before is not None and before.get("status") in ("ok", "kept"):
                entry = before  # it describes the files that are kept
            else:
                entry.update(status="kept", error=None)
            bar.write(
                f"{f.path}: output {paths['final']} exists, kept (use --overwrite to replace it)",
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
        if not kept:
            entry["seconds"] = round(time.perf_counter() - t0, 4)
        counts["kept" if kept else entry["status"]] += 1
        entries.append(entry)
        # after every image, so an interrupted run leaves a report too; earlier runs' entries are kept
        _write_report(report, merge_entries(earlier, entries, _entry_key))
    bar.close()
    _write_report(report, merge_entries(earlier, entries, _entry_key))
    print(
        f"restored {counts['ok']} image(s) into {out}"
        + (f", kept {counts['kept']} existing" if counts["kept"] else "")
        + (f", {counts['error']} failed" if counts["error"] else "")
        + f"; report: {report}",
        file=sys.stderr,
    )
    return 1 if counts["error"] else 0
