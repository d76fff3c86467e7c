"""A straightforward per-image reference for the ``unstructured`` preset, in PIL and numpy only.

This is the baseline that ``benchmarks/degrade_throughput.py`` times ``oldphoto-bench degrade`` against. It
mirrors the style of the released code (Bringing-Old-Photos-Back-to-Life,
``Global/data/online_dataset_for_old_photos.py``, ``online_add_degradation_v2``): read each photo with PIL,
visit blur / noise / low resolution / JPEG in a random order, each with probability 0.7, then grayscale with
probability 0.1; every step goes back to a uint8 PIL image (rounding to nearest). It then saves the result as
PNG with PIL's defaults, an all-zero damage mask PNG (unstructured ops damage no region) and appends one JSON
line per image to ``records.jsonl``.

The ranges are the released code's: blur kernel 3/5/7 with sigma U(1, 5) (reflect-101 borders, like
``cv2.GaussianBlur``; done here in numpy); Gaussian or speckle noise with sigma U(5, 50)/255; salt-and-pepper
with amount U(0, 0.01) and salt share U(0.3, 0.8) (whole pixels, as the library does); low resolution
``randint(w // 2, w)`` per side, PIL bicubic down and nearest or bilinear up; PIL JPEG with quality
``randint(40, 100)``; PIL ``convert("L")`` for grayscale. Random draws come from
``np.random.default_rng([seed, index])``; outputs are statistically like the library's, not bit-identical.

Usage::

    python benchmarks/reference_unstructured.py INPUT_DIR OUT_DIR --seed 0
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def to_float(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def to_pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def blur(img: Image.Image, kernel_size: int, sigma: float) -> Image.Image:
    """Separable Gaussian blur with reflect-101 borders (numpy's ``reflect`` pad)."""
    x = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2
    k = np.exp(-x * x / (2 * sigma * sigma))
    k = (k / k.sum()).astype(np.float32)
    r = kernel_size // 2
    a = np.pad(to_float(img), ((r, r), (r, r), (0, 0)), mode="reflect")
    h, w = a.shape[0] - 2 * r, a.shape[1] - 2 * r
    rows = sum(k[i] * a[:, i : i + w] for i in range(kernel_size))
    out = sum(k[i] * rows[i : i + h] for i in range(kernel_size))
    return to_pil(out)


def gaussian_noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    a = to_float(img)
    return to_pil(a + rng.normal(0.0, sigma / 255.0, size=a.shape).astype(np.float32))


def speckle_noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    a = to_float(img)
    return to_pil(a + a * rng.normal(0.0, sigma / 255.0, size=a.shape).astype(np.float32))


def salt_pepper(img: Image.Image, amount: float, salt_share: float, rng: np.random.Generator) -> Image.Image:
    a = np.array(img)
    u = rng.random(a.shape[:2])
    a[u < amount] = 0
    a[u < amount * salt_share] = 255
    return Image.fromarray(a)


def low_resolution(img: Image.Image, new_w: int, new_h: int, up: str) -> Image.Image:
    small = img.resize((new_w, new_h), Image.BICUBIC)
    return small.resize(img.size, Image.NEAREST if up == "nearest" else Image.BILINEAR)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    with io.BytesIO() as f:
        img.save(f, format="JPEG", quality=quality)
        f.seek(0)
        return Image.open(f).convert("RGB")


def degrade_image_reference(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, list[dict[str, Any]]]:
    """One photo through the released code's unstructured pipeline; returns the image and the ops applied."""
    ops: list[dict[str, Any]] = []
    w, h = img.size
    for task in rng.permutation(4):
        if rng.random() >= 0.7:
            continue
        if task == 0:
            p = {"kernel_size": int(rng.choice([3, 5, 7])), "sigma": float(rng.uniform(1.0, 5.0))}
            img = blur(img, **p)
            ops.append({"type": "gaussian_blur", "params": p})
        elif task == 1:
            kind = ["gaussian_noise", "speckle_noise", "salt_pepper"][int(rng.integers(3))]
            if kind == "salt_pepper":
                p = {"amount": float(rng.uniform(0.0, 0.01)), "salt_share": float(rng.uniform(0.3, 0.8))}
                img = salt_pepper(img, rng=rng, **p)
            else:
                p = {"sigma": float(rng.uniform(5.0, 50.0))}
                img = (gaussian_noise if kind == "gaussian_noise" else speckle_noise)(img, rng=rng, **p)
            ops.append({"type": kind, "params": p})
        elif task == 2:
            p = {"new_w": int(rng.integers(w // 2, w + 1)), "new_h": int(rng.integers(h // 2, h + 1)),
                 "up": "nearest" if rng.random() < 0.5 else "bilinear"}
            img = low_resolution(img, **p)
            ops.append({"type": "low_resolution", "params": p})
        else:
            p = {"quality": int(rng.integers(40, 101))}
            img = jpeg(img, **p)
            ops.append({"type": "jpeg", "params": p})
    if rng.random() < 0.1:
        img = img.convert("L").convert("RGB")
        ops.append({"type": "grayscale", "params": {}})
    return img, ops


def list_images(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def degrade_folder_reference(inputs: str | Path, out_dir: str | Path, seed: int = 0) -> int:
    """Degrade every image under ``inputs`` into ``out_dir`` (``STEM.png``, ``STEM_mask.png``, ``records.jsonl``).

    Returns the number of images written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = list_images(inputs)
    with open(out / "records.jsonl", "a") as log:
        for i, path in enumerate(files):
            rng = np.random.default_rng([seed, i])
            with Image.open(path) as im:
                img = im.convert("RGB")
            degraded, ops = degrade_image_reference(img, rng)
            degraded.save(out / f"{path.stem}.png")
            Image.new("L", degraded.size, 0).save(out / f"{path.stem}_mask.png")
            log.write(json.dumps({"input": str(path), "output": f"{path.stem}.png", "seed": seed, "index": i,
                                  "ops": ops}) + "\n")
    return len(files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Reference (PIL + numpy, per image) unstructured degradation.")
    ap.add_argument("inputs", help="folder of clean photos")
    ap.add_argument("out_dir", help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = degrade_folder_reference(args.inputs, args.out_dir, args.seed)
    print(f"reference: degraded {n} images into {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
