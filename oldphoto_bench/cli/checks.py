"""Checks every command runs on its arguments before any work: the output folder and the device.

Both raise ``ValueError`` with one line for the user (the command line turns it into exit code 2), so that
nothing is computed, and nothing written, for a run that could not save its results anyway.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .choices import DEVICES


def check_out_dir(out: str | os.PathLike, flag: str = "--out") -> None:
    """``out`` is an existing writable folder, or can be created: the nearest existing folder above it is
    writable and nothing on its path is a file."""
    out = Path(out)
    probe = out
    while True:
        try:
            is_dir = probe.is_dir()
            exists = is_dir or probe.exists() or probe.is_symlink()
        except OSError as e:  # e.g. a folder above it is not searchable
            raise ValueError(f"{flag} {out}: cannot look into {probe} ({e.strerror or e})") from None
        if exists:
            break
        if probe.parent == probe:
            break
        probe = probe.parent
    if not exists:
        raise ValueError(f"{flag} {out}: no folder above it exists")
    if not is_dir:
        what = "it" if probe == out else str(probe)
        kind = "a link to nothing" if probe.is_symlink() and not probe.exists() else "a file"
        raise ValueError(f"{flag} {out}: {what} is {kind}, not a folder; choose another {flag}")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == out else f" ({probe}, where it would be created)"
        raise ValueError(f"{flag} {out}: the folder{where} is not writable; choose another {flag}")


def check_device(device: str, flag: str = "--device") -> None:
    """``cpu``, or ``cuda`` / ``cuda:N`` with torch seeing that GPU; anything else is a usage error."""
    if device == "cpu":
        return
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if m is None:
        raise ValueError(f"{flag} {device}: unknown device; use {DEVICES}")
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"{flag} {device}: torch sees no CUDA device here; use --device cpu")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise ValueError(f"{flag} {device}: torch sees {torch.cuda.device_count()} CUDA device(s) "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
