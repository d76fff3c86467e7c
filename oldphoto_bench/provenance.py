"""Provenance: every run writes its resolved config, seed, versions and git revision next to its outputs."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def git_revision(path: str | Path | None = None) -> str | None:
    """The git revision of the source checkout (``None`` when not in a checkout or git is missing).

    Read-only: ``--no-optional-locks`` keeps ``git status`` from refreshing the index, which would take
    ``.git/index.lock`` in the user's checkout (and fail a commit running at the same moment)."""
    where = Path(path) if path else Path(__file__).resolve().parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=where, env=env, capture_output=True,
                              text=True, timeout=5, check=False)

    try:
        out = git("rev-parse", "HEAD")
        if out.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages that change numbers."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("oldphoto-bench", "torch", "torchvision", "numpy", "pillow", "scikit-image", "opencv-python-headless"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        import torch

        out["cuda"] = torch.version.cuda or "none"
    except ImportError:
        pass
    return out


def manifest(seed: int | None = None, config: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": seed,
        "git_revision": git_revision(),
        "versions": versions(),
        "config": config,
        **extra,
    }


def _umask() -> int:
    """The process umask, read without changing it where the platform allows (os.umask is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_file(folder: str | Path, name: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a new hidden temporary file next to ``folder/name``: (open file descriptor, path).

    Unlike ``tempfile.mkstemp`` (always 0600), the file gets ordinary permissions (0666 less the umask), so
    the file it is renamed into has the same permissions as any other output."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=suffix)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, Path(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_own_json(path: str | Path, what: str, valid: Any) -> dict[str, Any] | None:
    """The JSON object of an output file an earlier run wrote (``None`` when ``path`` does not exist).

    Raises ``ValueError`` when ``path`` exists but is not ``what`` (unreadable, not JSON, or ``valid(obj)``
    false), so that a file of the user's with an output's name is never replaced."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path} exists and is not {what} ({type(e).__name__}); move it away or choose "
                         "another --out") from None
    if not isinstance(obj, dict) or not valid(obj):
        raise ValueError(f"{path} exists and is not {what}; move it away or choose another --out")
    return obj


def earlier_runs(path: str | Path) -> list[dict[str, Any]]:
    """The runs recorded in an existing manifest, the earliest first (``[]`` when there is none).

    Raises ``ValueError`` when ``path`` exists but is not a manifest, so that it is never replaced."""
    old = read_own_json(path, "a manifest", lambda o: "created" in o)
    if old is None:
        return []
    history = old.pop("earlier_runs", [])
    return [*history, old] if isinstance(history, list) else [old]


def write_manifest(path: str | Path, seed: int | None = None, config: Any = None, **extra: Any) -> dict[str, Any]:
    """Write this run's manifest to ``path``. Earlier runs into the same folder are kept, the earliest first,
    under ``"earlier_runs"``; the top-level fields always describe the latest run."""
    m = manifest(seed=seed, config=config, **extra)
    history = earlier_runs(path)
    if history:
        m["earlier_runs"] = history
    atomic_write_bytes(path, (json.dumps(m, indent=2, default=str) + "\n").encode())
    return m


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte blocks (checkpoints, weights, demo outputs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
