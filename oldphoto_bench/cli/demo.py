"""``oldphoto-bench demo``: the main job on the embedded photos (no download needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Run the main job on the photos that ship inside scikit-image (nothing is downloaded).

For now: ages every embedded photo with each shipped preset and writes one contact sheet per preset
(clean | degraded | mask) plus the degraded images, masks and records, into --out."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded photos", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("oldphoto_demo"), help="output folder (default: ./oldphoto_demo)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument("--presets", default=None, help="comma-separated presets (default: all shipped presets)")
    p.add_argument("--size", type=int, default=384, help="longer side the photos are resized to (default: 384)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch.nn.functional as F
    from tqdm import tqdm

    from ..data import EmbeddedSource
    from ..degrade import Synthesizer, preset_names
    from ..imageio import save_image, save_mask
    from ..provenance import write_manifest
    from ..seeding import derive_seed
    from ..viz import contact_sheet, mask_overlay, save_sheet

    presets = args.presets.split(",") if args.presets else preset_names()
    source = EmbeddedSource()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.json", seed=args.seed, config={"presets": presets, "size": args.size})
    photos = []
    for i in range(len(source)):
        s = source[i]
        img = s.image
        scale = args.size / max(img.shape[-2:])
        if scale < 1:
            img = F.interpolate(img, scale_factor=scale, mode="bicubic", antialias=True,
                                align_corners=False).clamp(0, 1)
        photos.append((s.name, img))
    bar = tqdm(total=len(presets) * len(photos), unit="img", desc="demo", disable=args.no_progress)
    for preset in presets:
        synth = Synthesizer(preset)
        rows, names = [], []
        with _open_records(out / preset) as rec:
            for i, (name, img) in enumerate(photos):
                res = synth(img, derive_seed(args.seed, i))
                save_image(res.image, out / preset / f"{name}.png")
                save_mask(res.mask, out / preset / f"{name}_mask.png")
                rec.write(json.dumps({"input": f"embedded:{name}", **res.records[0]}) + "\n")
                rows.append([img, res.image, mask_overlay(res.image, res.mask)])
                names.append(name)
                bar.update(1)
        path = save_sheet(contact_sheet(rows, ["clean", f"degraded ({preset})", "mask (red)"], names),
                          out / f"contact_{preset}.png")
        bar.write(f"wrote {path}")
    bar.close()
    print(f"demo outputs in {out}", file=sys.stderr)
    return 0


def _open_records(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / "records.jsonl", "w", encoding="utf-8")
