"""Export training runs into a shipped folder: inference-only checkpoints plus ``provenance.json``.

    ship_runs("runs/tiny")                         -> every stage present, into PRETRAINED_DIR
    ship_runs("runs/tiny", dest, stages="vae-a,vae-b,mapping", max_mb=60)
    list_shipped(PRETRAINED_DIR)                   -> one provenance dict per shipped stage (+ sha256 check)

Everything is checked before anything is written: the checkpoint is the stage the table says, its
training data holds no test set (:func:`oldphoto_bench.data.check_not_test_set`), the kept networks load
into their recorded architectures, and the folder's total size after the export (the new files plus
the stages already there and not replaced) is at most ``max_mb`` MB (10^6 bytes). Each file is written
atomically (temporary file + rename); ``provenance.json`` last, so its sha256 always names a complete
``last.pt`` (``list_shipped`` reports a mismatch after an interrupted export).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..provenance import atomic_write_bytes, git_revision, sha256_file
from . import CHECKPOINT_FILE, PRETRAINED_DIR, PROVENANCE_NAME
from .stages import ShippedStage, present_stages, select_stages

DEFAULT_MAX_MB = 60.0
MB = 1_000_000
SHIPPED_MODE = 0o644  # package data readable by every user (the temporary files of atomic writes are 0600)
# checkpoint keys an inference checkpoint keeps (optimizers, scaler, streams, generators are training state)
KEPT_KEYS = ("format", "stage", "step", "elapsed", "config", "extra")
# manifest keys copied under "provenance.training" (the rest are config/versions, stored on their own)
MANIFEST_SKIP = ("config", "versions", "git_revision", "seed", "command", "created", "earlier_runs")


@dataclass
class Export:
    """One stage ready to write: the stripped checkpoint's bytes and its provenance."""

    row: ShippedStage
    data: bytes
    provenance: dict[str, Any]

    @property
    def provenance_bytes(self) -> bytes:
        return (json.dumps(self.provenance, indent=2, default=str) + "\n").encode()


def strip_checkpoint(ckpt: dict[str, Any], keep: tuple[str, ...], where: str = "checkpoint") -> dict[str, Any]:
    """The inference part of a training checkpoint: :data:`KEPT_KEYS` and the specs/weights of ``keep``.

    Floating-point weights are stored as float32 copies (never half precision: restored outputs must not
    depend on how the file was shipped); integer buffers (BatchNorm's step counts) keep their dtype.
    """
    missing = [n for n in keep if n not in ckpt.get("models", {}) or n not in ckpt.get("specs", {})]
    if missing:
        raise ValueError(f"{where} has no network(s) {missing}; it holds {sorted(ckpt.get('models', {}))}")
    out = {k: ckpt[k] for k in KEPT_KEYS if k in ckpt}
    out["specs"] = {n: dict(ckpt["specs"][n]) for n in keep}
    out["models"] = {
        n: {k: (v.detach().to(torch.float32) if v.is_floating_point() else v.detach()).clone().contiguous()
            for k, v in ckpt["models"][n].items()}
        for n in keep
    }
    return out


def _check_loads(stripped: dict[str, Any], where: str) -> dict[str, int]:
    """Build every kept network from its spec and load its weights (as the loaders do) -> parameter counts."""
    from ..models import NETWORKS
    from ..train import baseline_stage, face_stage  # noqa: F401  (register the generators' network types)

    counts = {}
    for name, spec in stripped["specs"].items():
        net = NETWORKS.build(spec)
        try:
            net.load_state_dict(stripped["models"][name])
        except RuntimeError as e:
            raise ValueError(f"{where}: {name!r} does not load into its recorded architecture "
                             f"({str(e).splitlines()[0]})") from None
        counts[name] = sum(p.numel() for p in net.parameters())
    return counts


def _count_files(part: str) -> int | None:
    from ..data import scan_images
    from ..imageio import is_image_file

    if part.startswith("hf:") or part == "embedded":
        return None
    p = Path(part).expanduser()
    if p.is_dir():
        return len(scan_images(p))
    return 1 if p.is_file() and is_image_file(p) else None


def _shared_set(part: str) -> str | None:
    from ..data.splits import ALL_SETS, shared_data_root

    root, p = shared_data_root(), Path(part).expanduser()
    if root is None or not p.exists():
        return None
    resolved = p.resolve()
    return next((name for name in ALL_SETS if name != "embedded" and resolved == root / name), None)


def data_sources(spec: str | None) -> dict[str, Any] | None:
    """A data spec as recorded, split into its parts with the shared set each names and its image count
    (``None`` where it cannot be counted here: hub ids, missing folders)."""
    if not spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    return {"spec": spec, "sources": [{"path": p, "shared_set": _shared_set(p), "files": _count_files(p)}
                                      for p in parts]}


def check_training_data(run_cfg: dict[str, Any], where: str) -> None:
    """Refuse a run trained on a test set (``embedded`` included, whichever recipe allowed it)."""
    from ..data import check_not_test_set

    for flag in ("data", "real"):
        spec = run_cfg.get(flag)
        if spec:
            try:
                check_not_test_set(spec)
            except ValueError as e:
                raise ValueError(f"{where} was trained with --{flag} {spec}: not shipped, {e}") from None


def _command(stage_args: list[str], run_cfg: dict[str, Any], manifest: dict[str, Any]) -> tuple[str, str]:
    recorded = str(manifest.get("command") or "")
    if recorded.startswith("oldphoto-bench train "):
        # the runs folder of the training machine means nothing elsewhere: shipped files say RUNS
        return re.sub(r"(--out[ =])\S+", r"\1RUNS", recorded), "manifest.json (--out written as RUNS)"
    parts = ["oldphoto-bench train", *stage_args, "--config CONFIG", "--out RUNS", f"--data {run_cfg.get('data')}"]
    if run_cfg.get("real"):
        parts.append(f"--real {run_cfg['real']}")
    parts.append(f"--device {run_cfg.get('device', 'cpu')}")
    return " ".join(parts), ("reconstructed from config.run (the run was not started by the CLI; the recipe "
                             "name and --set overrides are not recorded: the resolved config is 'config')")


def _log_seconds(path: Path) -> float | None:
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return float(rows[-1]["seconds"]) if rows else None
    except (KeyError, ValueError):
        return None


def _this_command() -> str:
    name = Path(sys.argv[0]).name
    return " ".join(["oldphoto-bench" if name in ("__main__.py", "oldphoto-bench") else name, *sys.argv[1:]])


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def export_stage(runs: str | Path, row: ShippedStage) -> Export:
    """Check and strip ``RUNS/<row.run>/last.pt`` and build its provenance (nothing is written)."""
    from ..train.checkpoint import load_checkpoint

    run_dir = Path(runs) / row.run
    src = run_dir / CHECKPOINT_FILE
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found: train it first (`oldphoto-bench ship --retrain {runs} "
                                f"--stages {row.run}` or `oldphoto-bench train {' '.join(row.train)} ...`)")
    ckpt = load_checkpoint(src)
    cfg = ckpt.get("config") or {}
    run_cfg = dict(cfg.get("run") or {})
    stage_args = [ckpt.get("stage"), *(run_cfg.get("stage_args") or [])]
    if tuple(stage_args) != row.train:
        raise ValueError(f"{src} holds stage {' '.join(map(str, stage_args))!r}, not {' '.join(row.train)!r}")
    check_training_data(run_cfg, str(src))
    keep = row.keep + tuple(n for n in row.optional if n in ckpt.get("models", {}))
    stripped = strip_checkpoint(ckpt, keep, str(src))
    parameters = _check_loads(stripped, str(src))
    buffer = io.BytesIO()
    torch.save(stripped, buffer)
    data = buffer.getvalue()

    manifest = _read_json(run_dir / "manifest.json")
    command, command_source = _command([str(a) for a in stage_args], run_cfg, manifest)
    elapsed = float(ckpt.get("elapsed", 0.0))
    provenance = {
        "stage": row.run,
        "train_stage": list(row.train),
        "file": CHECKPOINT_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "networks": {n: {"type": stripped["specs"][n].get("type"), "parameters": parameters[n]}
                     for n in keep},
        "needs": list(row.needs),
        "data": {"data": data_sources(run_cfg.get("data")), "real": data_sources(run_cfg.get("real"))},
        "seed": cfg.get("seed", manifest.get("seed")),
        "command": command,
        "command_source": command_source,
        "steps": int(ckpt.get("step", 0)),
        "total_steps": manifest.get("total_steps"),
        "training_seconds": round(elapsed, 3),
        "log_csv_seconds": _log_seconds(run_dir / "log.csv"),
        "device": run_cfg.get("device"),
        "world_size": run_cfg.get("world_size"),
        "run_started": manifest.get("created"),  # when the run (or its last --resume) began
        "git_revision": manifest.get("git_revision"),
        "versions": manifest.get("versions"),
        "training": {k: v for k, v in manifest.items() if k not in MANIFEST_SKIP},
        "eval": _read_json(run_dir / "eval.json") or None,
        "config": cfg,
        "source": {"checkpoint": f"RUNS/{row.run}/{CHECKPOINT_FILE}", "sha256": sha256_file(src),
                   "bytes": src.stat().st_size},
        "exported": {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "git_revision": git_revision(), "command": _this_command().replace(str(runs), "RUNS")},
    }
    return Export(row, data, provenance)


def _existing_bytes(dest: Path, name: str) -> int:
    return sum(p.stat().st_size for p in (dest / name / CHECKPOINT_FILE, dest / name / PROVENANCE_NAME)
               if p.is_file())


def ship_runs(runs: str | Path, dest: str | Path = PRETRAINED_DIR, stages: str | list[str] | None = None,
              max_mb: float = DEFAULT_MAX_MB, log=print) -> list[Export]:
    """Export ``stages`` of ``runs`` (default: every table stage present there) into ``dest``.

    Raises before writing anything: ``FileNotFoundError`` for a missing run, ``ValueError`` for a wrong
    stage, test-set training data, weights that do not load, or a total over ``max_mb`` MB.
    """
    runs, dest = Path(runs), Path(dest)
    rows = present_stages(runs) if stages is None else select_stages(stages)
    if not rows:
        raise FileNotFoundError(f"no trained stage in {runs} (looked for <stage>/{CHECKPOINT_FILE} of "
                                f"{', '.join(r.run for r in select_stages(None))})")
    exports = [export_stage(runs, row) for row in rows]
    replaced = {e.row.run for e in exports}
    kept = [s for s in select_stages(None) if s.run not in replaced and (dest / s.run / CHECKPOINT_FILE).is_file()]
    total = sum(len(e.data) + len(e.provenance_bytes) for e in exports)
    total += sum(_existing_bytes(dest, s.run) for s in kept)
    if total > max_mb * MB:
        sizes = ", ".join(f"{e.row.run} {len(e.data) / MB:.2f}" for e in exports)
        raise ValueError(f"refusing to ship {total / MB:.2f} MB into {dest}: over --max-mb {max_mb:g} MB "
                         f"(exports: {sizes} MB; kept there: {', '.join(s.run for s in kept) or 'nothing'}); "
                         "nothing was written")
    for s in kept:
        stale = sorted(set(s.needs) & replaced)
        if stale:
            log(f"note: {dest / s.run} was trained on the {', '.join(stale)} checkpoint(s) being replaced; "
                f"ship {s.run} from {runs} too")
    for e in exports:
        out = dest / e.row.run
        for name, data in ((CHECKPOINT_FILE, e.data), (PROVENANCE_NAME, e.provenance_bytes)):
            atomic_write_bytes(out / name, data)
            os.chmod(out / name, SHIPPED_MODE)
        log(f"shipped {e.row.run}: {len(e.data) / MB:.2f} MB, {e.provenance['steps']} steps -> {out}")
    log(f"{dest}: {total / MB:.2f} MB in all (limit {max_mb:g} MB)")
    return exports


def list_shipped(dest: str | Path = PRETRAINED_DIR) -> list[dict[str, Any]]:
    """One dict per ``dest/<stage>/last.pt``: its provenance plus ``sha256_ok`` (the file matches the
    recorded hash; ``None`` without a provenance file) and ``bytes_on_disk``."""
    dest = Path(dest)
    out = []
    for ckpt in sorted(dest.glob(f"*/{CHECKPOINT_FILE}")):
        prov = _read_json(ckpt.parent / PROVENANCE_NAME)
        entry = {"stage": ckpt.parent.name, **prov, "bytes_on_disk": ckpt.stat().st_size}
        entry["sha256_ok"] = (sha256_file(ckpt) == prov.get("sha256")) if prov else None
        out.append(entry)
    return out


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(float(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def format_listing(entries: list[dict[str, Any]]) -> str:
    """A text table: stage, steps, size, git revision, training time, sha256 check, data sets."""
    header = f"{'stage':18s} {'steps':>6s} {'MB':>6s} {'git revision':18s} {'train time':>10s} {'sha256':8s} data"
    lines = [header]
    for e in entries:
        rev = str(e.get("git_revision") or "?")
        rev = rev[:12] + ("-dirty" if rev.endswith("-dirty") else "")
        srcs = [s for k in ("data", "real") for s in ((e.get("data") or {}).get(k) or {}).get("sources", [])]
        data = ", ".join(f"{s.get('shared_set') or s['path']} ({s['files'] if s.get('files') is not None else '?'})"
                         for s in srcs) or "?"
        check = {True: "ok", False: "MISMATCH", None: "no prov."}[e["sha256_ok"]]
        lines.append(f"{e['stage']:18s} {str(e.get('steps', '?')):>6s} {e['bytes_on_disk'] / MB:6.2f} {rev:18s} "
                     f"{format_duration(e.get('training_seconds')):>10s} {check:8s} {data}")
    return "\n".join(lines)
