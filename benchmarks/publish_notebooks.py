"""Execute every notebook in notebooks/ with its default parameters and the shipped checkpoints, and publish
the executed copies (outputs included) under results/notebooks/ for reading without running anything.

    python benchmarks/publish_notebooks.py                      # all notebooks -> results/notebooks/
    python benchmarks/publish_notebooks.py --only 02,05         # some of them
    python benchmarks/publish_notebooks.py --fast --out /tmp/nb # FAST mode, elsewhere (a quick check)

Figures are re-encoded as JPEG at screen resolution (at most ``--max-width`` pixels wide), so the copies
stay light (``--max-mb``, 10 MB together by default: the command fails above it). ``notebooks/`` itself
stays stripped. Each notebook's wall time on this machine is written to ``results/notebooks/timings.json``.
The notebooks see the shared data (``../shared/data`` or ``$OLDPHOTO_SHARED_DATA``) when it is present, as a
reader's clone would; they never train by default.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def shrink_png(data: str, max_width: int, quality: int) -> tuple[str, str]:
    """Base64 PNG -> (mime, base64 JPEG) at most ``max_width`` pixels wide."""
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return "image/jpeg", base64.b64encode(buf.getvalue()).decode("ascii")


def shrink_outputs(nb, max_width: int, quality: int) -> None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data or "image/png" not in data:
                continue
            mime, encoded = shrink_png(data.pop("image/png"), max_width, quality)
            data[mime] = encoded
            out.get("metadata", {}).pop("image/png", None)


def relative_paths(nb) -> None:
    """Machine paths in text outputs as ``.``, ``../shared``, ``~`` or ``<work>`` (temporary files), as in every
    published result (:func:`publish_results.portable`): the copies name no folder of the machine that ran
    them."""
    from publish_results import portable

    work = Path(os.environ.get("TMPDIR", "/tmp"))
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = portable(out["text"], work)
            for mime in ("text/plain", "text/markdown", "text/html"):
                if mime in out.get("data", {}):
                    out["data"][mime] = portable(out["data"][mime], work)


def execute(path: Path, params: dict, timeout: int):
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if params:
        idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
        cell = nbformat.v4.new_code_cell("# injected by benchmarks/publish_notebooks.py\n"
                                         + "".join(f"{k} = {v!r}\n" for k, v in params.items()))
        cell.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(idx + 1, cell)
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "results" / "notebooks"))
    ap.add_argument("--only", default=None, help="comma-separated prefixes, e.g. 02,05 (default: every notebook)")
    ap.add_argument("--fast", action="store_true", help="inject FAST = True (a quick check, not for publishing)")
    ap.add_argument("--max-width", type=int, default=900)
    ap.add_argument("--quality", type=int, default=80)
    ap.add_argument("--max-mb", type=float, default=10.0)
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = ap.parse_args(argv)

    import nbformat

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        paths = [p for p in paths if any(p.name.startswith(w) for w in wanted)]
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    timings.setdefault("notebooks", {})
    for path in paths:
        print(f"executing {path.name} ...", flush=True)
        nb, seconds = execute(path, {"FAST": True} if args.fast else {}, args.timeout)
        shrink_outputs(nb, args.max_width, args.quality)
        relative_paths(nb)
        nbformat.write(nb, out / path.name)
        size = (out / path.name).stat().st_size
        timings["notebooks"][path.name] = {"seconds": round(seconds, 1), "bytes": size, "fast": args.fast}
        print(f"  {seconds:.0f} s, {size / MB:.2f} MB", flush=True)
    timings["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    timings["command"] = "python benchmarks/publish_notebooks.py" + (" --fast" if args.fast else "")
    timings_file.write_text(json.dumps(timings, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.glob("*.ipynb"))
    print(f"{out}: {total / MB:.2f} MB in all (limit {args.max_mb:g} MB)")
    if total > args.max_mb * MB:
        print("error: over the size limit")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
