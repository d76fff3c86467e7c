"""Degradation throughput: the in-memory Synthesizer, per-op costs, and folder-to-folder end to end.

Three measurements:

1. **in memory**: images/second of ``Synthesizer(preset)(image, seed)`` at 256^2 and 512^2 for the
   ``unstructured`` and ``paper`` presets (``paper`` is skipped with a message when it cannot be loaded), on
   CPU and, when available, CUDA;
2. **per op** (``--profile-ops``): mean milliseconds of each unstructured op's ``apply`` at 512^2;
3. **end to end**: ``N`` 512x512 PNG crops of scikit-image's bundled photos, degraded folder to folder by the
   PIL/numpy reference (``benchmarks/reference_unstructured.py``) and by
   ``oldphoto-bench degrade --preset unstructured --seed 0 --out DIR INPUT_DIR``. Both run as subprocesses and
   the wall clock of the whole command is measured, Python and library start-up included. Target: ours at
   least 2x faster (ratio ours/reference <= 0.5).

Usage::

    python benchmarks/degrade_throughput.py                      # everything, defaults
    python benchmarks/degrade_throughput.py --profile-ops --json results.json
    python benchmarks/degrade_throughput.py --skip-memory --n-images 96
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "camera")


# ---- test images -----------------------------------------------------------------------------------------------
def test_photos(n: int, size: int = 512, seed: int = 0) -> list[np.ndarray]:
    """``n`` size x size uint8 RGB crops of scikit-image's bundled photos (random crops and flips)."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    sources = []
    for name in PHOTOS:
        a = getattr(skimage.data, name)()
        a = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]
        short = min(a.shape[:2])
        if short < size:  # upscale small photos so that a crop fits
            f = size / short
            a = np.asarray(Image.fromarray(a).resize((round(a.shape[1] * f) + 1, round(a.shape[0] * f) + 1),
                                                     Image.BICUBIC))
        sources.append(a)
    out = []
    for i in range(n):
        a = sources[i % len(sources)]
        y = int(rng.integers(0, a.shape[0] - size + 1))
        x = int(rng.integers(0, a.shape[1] - size + 1))
        crop = a[y : y + size, x : x + size]
        out.append(np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop))
    return out


def write_pngs(arrays: list[np.ndarray], folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"photo_{i:04d}.png")


# ---- in memory -------------------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def bench_memory(presets: list[str], sizes: list[int], devices: list[str], n: int) -> list[dict[str, Any]]:

    from oldphoto_bench.degrade import Synthesizer
    from oldphoto_bench.imageio import to_tensor

    rows = []
    for preset in presets:
        try:
            synth = Synthesizer(preset)
        except Exception as e:  # noqa: BLE001  (a preset that is not there yet is reported, not fatal)
            print(f"[memory] skipping preset {preset!r}: {type(e).__name__}: {e}")
            continue
        for size in sizes:
            imgs = [to_tensor(a) for a in test_photos(min(n, 8), size)]
            for device in devices:
                xs = [x.to(device) for x in imgs]
                for s in range(2):  # warm-up (CUDA context, kernels, allocator)
                    synth(xs[s % len(xs)], 10_000 + s)
                _sync(device)
                t0 = time.perf_counter()
                for s in range(n):
                    synth(xs[s % len(xs)], s)
                _sync(device)
                dt = time.perf_counter() - t0
                rows.append({"preset": preset, "size": size, "device": device, "images": n,
                             "seconds": dt, "images_per_s": n / dt})
                print(f"[memory] {preset:>12} {size:>4}^2 {device:>4}: {n / dt:8.1f} images/s")
            del xs
    return rows


def profile_ops(size: int, devices: list[str], n: int) -> list[dict[str, Any]]:
    """Mean ms of each unstructured op's ``apply`` (sampled params vary per call) at ``size``^2."""
    from oldphoto_bench.degrade import OPS
    from oldphoto_bench.imageio import to_tensor
    from oldphoto_bench.seeding import numpy_rng

    names = ["gaussian_blur", "gaussian_noise", "speckle_noise", "salt_pepper", "low_resolution", "jpeg",
             "grayscale"]
    x_cpu = to_tensor(test_photos(1, size)[0])
    rows = []
    for device in devices:
        x = x_cpu.to(device)
        for name in names:
            op = OPS.build(name)
            params = [op.sample(numpy_rng(s), size, size) for s in range(n + 1)]
            op.apply(x, params[-1])  # warm-up
            _sync(device)
            t0 = time.perf_counter()
            for p in params[:n]:
                op.apply(x, p)
            _sync(device)
            ms = 1000 * (time.perf_counter() - t0) / n
            rows.append({"op": name, "size": size, "device": device, "ms": ms})
            print(f"[ops] {name:>15} {size}^2 {device:>4}: {ms:7.2f} ms")
    return rows


# ---- end to end ------------------------------------------------------------------------------------------------
def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, proc


def _count_pngs(folder: Path) -> int:
    return sum(1 for p in folder.glob("*.png") if not p.stem.endswith("_mask"))


def bench_end_to_end(n_images: int, repeats: int, keep: Path | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="degrade_bench_"))
    try:
        inputs = tmp / "in"
        write_pngs(test_photos(n_images, 512), inputs)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        ref_cmd = [sys.executable, str(REPO / "benchmarks" / "reference_unstructured.py"), str(inputs), "OUT",
                   "--seed", "0"]
        ours_cmd = [sys.executable, "-m", "oldphoto_bench.cli", "degrade", "--preset", "unstructured", "--seed", "0",
                    "--out", "OUT", str(inputs)]
        result: dict[str, Any] = {"images": n_images, "size": 512, "repeats": repeats,
                                  "reference_cmd": " ".join(ref_cmd), "ours_cmd": " ".join(ours_cmd)}
        have_cli = importlib.util.find_spec("oldphoto_bench.cli") is not None and (
            REPO / "oldphoto_bench" / "cli" / "degrade.py").exists()
        times: dict[str, list[float]] = {"reference": [], "ours": []}
        for r in range(repeats):
            # alternate the order so that neither side always gets the warm file cache
            order = [("reference", ref_cmd), ("ours", ours_cmd)]
            for label, cmd in order if r % 2 == 0 else order[::-1]:
                if label == "ours" and not have_cli:
                    continue
                out = tmp / f"out_{label}_{r}"
                dt, proc = _timed([out.as_posix() if c == "OUT" else c for c in cmd], env)
                if proc.returncode != 0:
                    msg = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                    print(f"[e2e] {label} failed (exit {proc.returncode}):\n    " + "\n    ".join(msg))
                    result[f"{label}_error"] = "\n".join(msg)
                    if label == "ours":
                        have_cli = False
                    continue
                written = _count_pngs(out)
                if written != n_images:
                    print(f"[e2e] warning: {label} wrote {written} images, expected {n_images}")
                times[label].append(dt)
                print(f"[e2e] {label:>9} run {r}: {dt:7.2f} s  ({n_images / dt:6.1f} images/s)")
                if keep is not None and r == 0:
                    shutil.copytree(out, keep / label, dirs_exist_ok=True)
                shutil.rmtree(out, ignore_errors=True)
        if not have_cli and not times["ours"]:
            print("[e2e] `oldphoto-bench degrade` is not available yet (oldphoto_bench/cli/degrade.py missing or "
                  "failing); only the reference was timed.")
        for label, ts in times.items():
            if ts:
                result[f"{label}_seconds"] = min(ts)
                result[f"{label}_seconds_all"] = ts
                result[f"{label}_images_per_s"] = n_images / min(ts)
        if times["reference"] and times["ours"]:
            result["ratio_ours_over_reference"] = min(times["ours"]) / min(times["reference"])
            result["speedup"] = min(times["reference"]) / min(times["ours"])
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def print_e2e_table(res: dict[str, Any]) -> None:
    print(f"\nend to end, {res['images']} images of {res['size']}x{res['size']} PNG, folder to folder "
          f"(whole command wall clock, best of {res['repeats']}):")
    print(f"  {'':<10} {'seconds':>9} {'images/s':>9}")
    for label in ("reference", "ours"):
        if f"{label}_seconds" in res:
            print(f"  {label:<10} {res[f'{label}_seconds']:9.2f} {res[f'{label}_images_per_s']:9.1f}")
        else:
            print(f"  {label:<10} {'n/a':>9} {'n/a':>9}")
    if "ratio_ours_over_reference" in res:
        r = res["ratio_ours_over_reference"]
        verdict = "meets" if r <= 0.5 else "misses"
        print(f"  ratio ours/reference = {r:.3f} (speed-up {res['speedup']:.2f}x; {verdict} the >= 2x target)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--presets", nargs="+", default=["unstructured", "paper"], help="presets for the in-memory run")
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="square sizes for the in-memory run")
    ap.add_argument("--memory-images", type=int, default=32, help="images per in-memory measurement")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="auto: CPU, plus CUDA when available")
    ap.add_argument("--profile-ops", action="store_true", help="print mean ms per unstructured op at 512^2")
    ap.add_argument("--profile-calls", type=int, default=20, help="calls per op for --profile-ops")
    ap.add_argument("--n-images", type=int, default=192, help="images for the end-to-end run")
    ap.add_argument("--repeats", type=int, default=1, help="end-to-end repetitions (best is reported)")
    ap.add_argument("--skip-memory", action="store_true", help="skip the in-memory measurement")
    ap.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end measurement")
    ap.add_argument("--keep-outputs", type=Path, default=None, help="copy the first run's outputs here")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads here and OMP/MKL threads for both subprocesses (default: library "
                         "defaults); on a busy machine, 1 avoids OpenMP threads waiting for a free core")
    ap.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    args = ap.parse_args(argv)

    if args.threads is not None:  # before torch is imported, so that OpenMP picks it up
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    elif args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    else:
        devices = [args.device]
    results: dict[str, Any] = {"devices": devices, "torch": torch.__version__, "threads": torch.get_num_threads(),
                               "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        results["cuda_device"] = torch.cuda.get_device_name(0)
    if not args.skip_memory:
        results["memory"] = bench_memory(args.presets, args.sizes, devices, args.memory_images)
    if args.profile_ops:
        results["ops"] = profile_ops(512, devices, args.profile_calls)
    if not args.skip_e2e:
        results["end_to_end"] = bench_end_to_end(args.n_images, args.repeats, args.keep_outputs)
        print_e2e_table(results["end_to_end"])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
