"""Face detection: faces found, false faces and seconds per megapixel, the hybrid detector against dlib's HOG.

Detectors (``oldphoto_bench.faces``): ``hybrid`` (the default, ``--face-backend auto``), ``dlib`` (HOG at the
released settings: one 2x upsampling, margin >= 0.5; the previous default) and, with ``--cascade``,
scikit-image's LBP ``cascade``. Photos:

- ``faces/ffhq10``: ten 512 px photos with one face each; counts photos whose face is found;
- ``faces/deepface``: 64 photos, some with several faces (no ground truth): faces found by each detector,
  and how many of them the other detector found too (boxes matched at IoU >= 0.3);
- the scikit-image photos shipped with the package (``embedded``): faces per photo. The astronaut shows one
  face and the camera man one (in three-quarter view, about 50 px); the others show no one, so every face
  there is a false face.

Time: wall clock of the detector call alone (image already in memory), summed per set, divided by the
set's megapixels. Run it with the number of threads you want measured (e.g. ``OMP_NUM_THREADS=2``).

Usage::

    python benchmarks/face_detection.py                       # ../shared/data next to the checkout
    python benchmarks/face_detection.py --data DIR --cascade --json out.json --sheet faces.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

PEOPLE = {"astronaut": 1, "camera": 1}  # faces visible in the embedded photos; all others show none


def load_set(spec: str) -> list[tuple[str, object]]:
    """``[(name, (1, 3, H, W) tensor)]`` of a data source (a folder or ``embedded``)."""
    from oldphoto_bench.data import open_source

    return [(s.name, s.image) for s in open_source(spec)]


def run_detector(detector, photos) -> tuple[dict[str, list], float, float]:
    """``({name: faces}, seconds, megapixels)`` of one detector over one set."""
    from oldphoto_bench.faces import detect_faces

    found, seconds, mp = {}, 0.0, 0.0
    for name, image in photos:
        t = time.perf_counter()
        found[name] = detect_faces(image, detector=detector)
        seconds += time.perf_counter() - t
        mp += image.shape[-1] * image.shape[-2] / 1e6
    return found, seconds, mp


def agreement(a: dict[str, list], b: dict[str, list], iou: float = 0.3) -> int:
    """How many faces of ``a`` overlap a face of ``b`` in the same photo (IoU >= ``iou``)."""
    from oldphoto_bench.faces.hybrid import box_iou

    return sum(any(box_iou(f.box, g.box) >= iou for g in b[name]) for name, faces in a.items() for f in faces)


def contact_sheet(photos, found: dict[str, list], path: Path, tile: int = 128, cols: int = 12) -> None:
    """Each detected face with twice its box around it, its photo's name and score, on one PNG."""
    import torch.nn.functional as F
    from PIL import Image, ImageDraw

    from oldphoto_bench.imageio import to_uint8

    tiles = []
    for name, image in photos:
        h, w = image.shape[-2:]
        for f in found[name]:
            cx, cy, half = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2, f.size
            x0, y0, x1, y1 = (max(0, int(v)) for v in (cx - half, cy - half, cx + half, cy + half))
            crop = F.interpolate(image[..., y0:min(h, y1), x0:min(w, x1)], size=(tile, tile), mode="area")
            t = Image.fromarray(to_uint8(crop))
            ImageDraw.Draw(t).text((2, 2), f"{name[:14]} {f.score:.2f}", fill=(255, 255, 0))
            tiles.append(t)
    sheet = Image.new("RGB", (cols * tile, max(1, -(-len(tiles) // cols)) * tile))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % cols) * tile, (k // cols) * tile))
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--cascade", action="store_true", help="also measure the LBP cascade")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--sheet", type=Path, help="write the hybrid detector's faces on deepface to this PNG")
    args = p.parse_args(argv)

    from oldphoto_bench.faces import build_detector

    sets = {"ffhq10": str(args.data / "faces" / "ffhq10"), "deepface": str(args.data / "faces" / "deepface"),
            "embedded": "embedded"}
    names = ["hybrid", "dlib"] + (["cascade"] if args.cascade else [])
    detectors = {n: build_detector(n) for n in names}
    results: dict = {}
    for set_name, spec in sets.items():
        if spec != "embedded" and not Path(spec).is_dir():
            print(f"{set_name}: {spec} not found, skipped")
            continue
        photos = load_set(spec)
        found = {}
        for n, det in detectors.items():
            found[n], seconds, mp = run_detector(det, photos)
            faces = sum(len(v) for v in found[n].values())
            row = {"photos": len(photos), "faces": faces, "photos_with_a_face": sum(bool(v) for v in found[n].values()),
                   "seconds": round(seconds, 2), "megapixels": round(mp, 2), "s_per_mp": round(seconds / mp, 2)}
            confident = getattr(det, "confident_score", None)
            row["below_confident_score"] = sum(f.score < confident for v in found[n].values() for f in v)
            if set_name == "embedded":
                row["per_photo"] = {k: len(v) for k, v in found[n].items()}
                row["false_faces"] = sum(max(0, len(v) - PEOPLE.get(k, 0)) for k, v in found[n].items())
                row["missed_people"] = sum(max(0, PEOPLE.get(k, 0) - len(v)) for k, v in found[n].items())
            results.setdefault(set_name, {})[n] = row
        if set_name == "deepface" and "dlib" in found:
            results[set_name]["hybrid"]["also_found_by_dlib"] = agreement(found["hybrid"], found["dlib"])
            results[set_name]["dlib"]["also_found_by_hybrid"] = agreement(found["dlib"], found["hybrid"])
            if args.sheet:
                contact_sheet(photos, found["hybrid"], args.sheet)
        for n, row in results[set_name].items():
            extra = {k: v for k, v in row.items() if k not in ("photos", "faces", "seconds", "megapixels",
                                                                "s_per_mp")}
            print(f"{set_name:9s} {n:8s} {row['faces']:3d} faces in {row['photos']:2d} photos  "
                  f"{row['s_per_mp']:6.2f} s/MP ({row['seconds']:.1f} s / {row['megapixels']:.1f} MP)  {extra}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
