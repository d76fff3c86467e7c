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
and one DIR/faces.json for the whole run:
  {"images": [{"input": PATH, "backend": NAME, "width": W, "height": H,
               "faces": [{"box": [x0, y0, x1, y1], "landmarks": [[x, y] x 5], "landmarks68": ... | null,
                          "score": S, "size": PX, "crop": FILE | null, "note": ...}]}],
   "failed": [{"input": PATH, "error": MESSAGE}]}
Coordinates are image pixels (pixel centres at integers); "landmarks" are the five alignment points (eye
centres, nose tip, mouth corners). Faces smaller than --min-face pixels are listed with "crop": null.

Backends: dlib (HOG detector + 68-point landmarks; needs the faces extra: pip install -e ".[faces]") or
cascade (scikit-image's LBP cascade; points placed from the box). auto uses dlib when it is installed and
says which backend runs. A bad input is reported with its file name and skipped; the exit code is then 1."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("faces", help="detect faces; write aligned crops and faces.json", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--backend", default="auto", choices=("auto", "dlib", "cascade"),
                   help="face detector (default: auto = dlib when installed, else cascade)")
    p.add_argument("--size", type=int, default=256, help="side of the aligned crops in pixels (default: 256)")
    p.add_argument("--min-face", type=float, default=32.0,
                   help="faces whose box side is smaller than this many pixels get no crop (default: 32)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (default: 80 megapixels)")
    p.set_defaults(run=run)


def _dumps(obj) -> str:
    """Indented JSON with lists of numbers kept on one line (boxes, points)."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)


def run(args: argparse.Namespace) -> int:
    from ..faces import align_face, build_detector
    from ..imageio import DEFAULT_MAX_PIXELS, ImageError, load_image, save_image
    from .inputs import expand_inputs

    if args.size < 16:
        raise ValueError(f"--size must be at least 16, got {args.size}")
    files, problems = expand_inputs(args.inputs)
    failed = [{"input": raw, "error": msg} for raw, msg in problems]
    for _, msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    detector = build_detector(args.backend)
    input_paths = {f.path.resolve() for f in files}
    images, n_faces = [], 0
    for f in files:
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
        entries = []
        for k, face in enumerate(sorted(faces, key=lambda q: (q.box[0], q.box[1]))):
            entry = face.to_dict()
            entry.pop("backend")
            entry.update(crop=None, note="")
            crop_path = out / f"{f.stem}_face{k}.png"
            if face.size < args.min_face:
                entry["note"] = f"skipped: face {face.size:.0f} px < {args.min_face:g} px"
            elif crop_path.resolve() in input_paths:
                entry["note"] = f"crop {crop_path} would write over an input; not written"
            else:
                crop, _ = align_face(image, face.landmarks5, args.size)
                save_image(crop, crop_path, grayscale=info.was_gray)
                entry["crop"] = crop_path.name
                n_faces += 1
            entries.append(entry)
        images.append({"input": str(f.path), "backend": detector.name, "width": info.width,
                       "height": info.height, "faces": entries})
    report = {"images": images, "failed": failed}
    (out / "faces.json").write_text(_dumps(report) + "\n", encoding="utf-8")
    print(f"faces: {n_faces} crop(s) from {len(images)} image(s) into {out}"
          + (f", {len(failed)} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
