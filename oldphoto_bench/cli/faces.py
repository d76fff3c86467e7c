"""``oldphoto-bench faces``: detect faces, write aligned crops and a JSON report."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HELP = """Detect faces and write their aligned crops (stage 3's alignment, without enhancement).

For each input image it writes, into --out:
  <stem>_face<k>.png   face k (0, 1, ... left to right) aligned to the five-point template, --size px
and one DIR/faces.json for the folder (rewritten atomically after every image):
  {"images": [{"input": PATH, "stem": NAME, "backend": NAME, "width": W, "height": H,
               "faces": [{"box": [x0, y0, x1, y1], "landmarks": [[x, y] x 5], "landmarks68": ... | null,
                          "score": S, "size": PX, "crop": FILE | null, "note": ...}]}],
   "failed": [{"input": PATH, "error": MESSAGE}]}
Coordinates are image pixels (pixel centres at integers); "landmarks" are the five alignment points (eye
centres, nose tip, mouth corners). Faces smaller than --min-face pixels are listed with "crop": null.

Backends (--face-backend; --backend is the same flag): hybrid (dlib's HOG detector at several scales
proposes faces, dlib's CNN detector confirms each, 68-point landmarks; needs the faces extra: pip install -e
".[faces]"), dlib (HOG detector + 68-point landmarks, as the released system; faces extra), or cascade
(scikit-image's LBP cascade; points placed from the box). auto (the default) uses hybrid when dlib and its
models are installed, else dlib, else cascade, and says which backend runs. The same choices are
`oldphoto-bench restore --face-backend`. A bad input is reported with its file name and skipped; the exit
code is then 1.

An input that is one of the outputs (a photo named faces.json, a photo in --out named like a crop) is refused
before anything is written (exit code 2). An image already in faces.json whose crops exist is kept as it is
unless --overwrite, and an existing crop not listed there is never replaced without --overwrite. A rerun
replaces the entries of the images it processes and keeps the others; manifest.json keeps the earlier runs
under "earlier_runs"."""

CROP = re.compile(r"(.+)_face[0-9]+\.png")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import FACE_BACKEND_HELP, FACE_BACKENDS

    p = sub.add_parser("faces", help="detect faces; write aligned crops and faces.json", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--face-backend", "--backend", dest="face_backend", default="auto", choices=FACE_BACKENDS,
                   metavar="NAME",
                   help=FACE_BACKEND_HELP + "; --backend is the same flag")
    p.add_argument("--size", type=int, default=256, help="side of the aligned crops in pixels (default: 256)")
    p.add_argument("--min-face", type=float, default=32.0,
                   help="faces whose box side is smaller than this many pixels get no crop (default: 32)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (default: 80 megapixels)")
    p.add_argument("--overwrite", action="store_true", help="replace crops and entries that already exist")
    p.set_defaults(run=run)


def _dumps(obj) -> str:
    """Indented JSON with lists of numbers kept on one line (boxes, points)."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)


def _key(entry: dict) -> str:
    """Entries describe crops named after the output stem, so an image's entry is found by its stem."""
    return str(entry.get("stem") or Path(str(entry.get("input"))).stem)


def _crops(entry: dict | None) -> list[str]:
    return [f["crop"] for f in (entry or {}).get("faces", []) if isinstance(f, dict) and f.get("crop")]


def _existing_crops(out: Path, stems: set[str]) -> list[Path]:
    """Files in ``out`` named like a crop of one of ``stems``."""
    if not out.is_dir():
        return []
    return [p for p in out.iterdir() if (m := CROP.fullmatch(p.name)) and m.group(1) in stems]


def run(args: argparse.Namespace) -> int:
    from ..faces import align_face, build_detector
    from ..imageio import DEFAULT_MAX_PIXELS, ImageError, load_image, save_image
    from ..provenance import atomic_write_bytes, earlier_runs, write_manifest
    from .inputs import expand_inputs
    from .outputs import load_entries, merge_entries, refuse_inputs_among_outputs

    if args.size < 16:
        raise ValueError(f"--size must be at least 16, got {args.size}")
    files, problems = expand_inputs(args.inputs)
    out: Path = args.out
    report_path = out / "faces.json"
    refuse_inputs_among_outputs(files, [out / "manifest.json", report_path,
                                        *_existing_crops(out, {f.stem for f in files})])
    earlier = [e for e in load_entries(report_path, "images") if isinstance(e, dict)]
    earlier_by_key = {_key(e): e for e in earlier}
    this_run = {str(f.path) for f in files} | {raw for raw, _ in problems}
    earlier_failed = [e for e in load_entries(report_path, "failed")
                      if isinstance(e, dict) and e.get("input") not in this_run]
    earlier_runs(out / "manifest.json")  # refuses a manifest.json that is not ours before anything is written
    failed = [{"input": raw, "error": msg} for raw, msg in problems]
    for _, msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    detector = build_detector(args.face_backend)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.json", config={"backend": detector.name, "size": args.size,
                                                  "min_face": args.min_face},
                   inputs=[str(f.path) for f in files])

    def write_report() -> None:
        report = {"images": merge_entries(earlier, images, _key), "failed": earlier_failed + failed}
        atomic_write_bytes(report_path, (_dumps(report) + "\n").encode())

    images, n_faces, n_kept = [], 0, 0
    for f in files:
        before = earlier_by_key.get(f.stem)
        if before is not None and not args.overwrite and all((out / c).exists() for c in _crops(before)):
            print(f"{f.path}: its faces are in {report_path} and its crops exist, kept (use --overwrite to "
                  "replace them)", file=sys.stderr)
            images.append(before)
            n_kept += 1
            continue
        ours = set(_crops(before))  # crops an unfinished earlier run listed: replaced without --overwrite
        try:
            image, info = load_image(f.path, args.max_pixels or DEFAULT_MAX_PIXELS)
            faces = detector(image)
        except ImageError as e:
            failed.append({"input": str(f.path), "error": str(e)})
            print(f"error: {e}", file=sys.stderr)
            continue
        except (OSError, RuntimeError, ValueError) as e:
            failed.append({"input": str(f.path), "error": f"{f.path}: {e}"})
            print(f"error: {f.path}: {e}", file=sys.stderr)
            continue
        entries, pending = [], []
        for k, face in enumerate(sorted(faces, key=lambda q: (q.box[0], q.box[1]))):
            entry = face.to_dict()
            entry.pop("backend")
            entry.update(crop=None, note="")
            crop_path = out / f"{f.stem}_face{k}.png"
            if face.size < args.min_face:
                entry["note"] = f"skipped: face {face.size:.0f} px < {args.min_face:g} px"
            elif crop_path.exists() and not args.overwrite and crop_path.name not in ours:
                entry["note"] = f"{crop_path.name} exists and was kept (use --overwrite to replace it)"
                print(f"{f.path}: crop {crop_path} exists, kept (use --overwrite to replace it)", file=sys.stderr)
            else:
                pending.append((align_face(image, face.landmarks5, args.size)[0], crop_path))
                entry["crop"] = crop_path.name
            entries.append(entry)
        images.append({"input": str(f.path), "stem": f.stem, "backend": detector.name, "width": info.width,
                       "height": info.height, "faces": entries})
        write_report()  # the entry first: a crop on disk is always listed, even if the run stops here
        for crop, crop_path in pending:
            save_image(crop, crop_path, grayscale=info.was_gray)
        n_faces += len(pending)
    write_report()
    print(f"faces: {n_faces} crop(s) from {len(images) - n_kept} image(s) into {out}"
          + (f", kept {n_kept} existing" if n_kept else "")
          + (f", {len(failed)} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
