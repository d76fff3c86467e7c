"""The one interface every benchmarked method implements, and the ``METHODS`` registry.

A method is built once per benchmark from a :class:`MethodContext` (where checkpoints live, the device, the
suite's masks) plus its own keyword options, and then restores one photo at a time::

    method = build_method("nlm", ctx)
    out = method.restore(MethodInput(image, name="astronaut", seed=..., mask=None))   # (1, 3, H, W) in [0, 1]

``method.settings`` (JSON-serialisable) holds every choice that changes its output; the harness writes it to
the manifest and reruns the method when it changes. A method that cannot run here (checkpoints or an
optional package missing) raises :class:`MethodUnavailable` from its constructor; :func:`try_build_method`
turns that into ``(None, reason)`` so the report shows an empty row with the reason instead of crashing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...registry import Registry

METHODS = Registry("benchmark method")
KINDS = ("reference", "classical", "learned", "ours")


class MethodUnavailable(Exception):
    """A method cannot run here; ``reason`` is one line for the report."""

    def __init__(self, method: str, reason: str):
        self.method, self.reason = method, reason
        super().__init__(f"{method}: {reason}")

    def __reduce__(self):
        return type(self), (self.method, self.reason)


@dataclass(frozen=True)
class MethodContext:
    """What every method may use besides its options.

    checkpoints: the runs folder (``--checkpoints``) holding our stages and the trained baselines.
    device: ``"cpu"`` or ``"cuda"``; inputs and outputs stay on the CPU.
    seed: the benchmark seed (per-photo seeds come with each :class:`MethodInput`).
    has_masks: the suite provides ground-truth damage masks (synthetic suites).
    """

    checkpoints: Path = Path("runs")
    device: str = "cpu"
    seed: int = 0
    has_masks: bool = True


@dataclass
class MethodInput:
    """One photo to restore: ``image`` ``(1, 3, H, W)`` float32 in [0, 1] on the CPU; ``seed`` derived from the
    benchmark seed and ``name``; ``mask`` the suite's ground-truth damage mask ``(1, 1, H, W)`` or None."""

    image: torch.Tensor
    name: str
    seed: int
    mask: torch.Tensor | None = None


class Method:
    """Base class. Subclasses set ``name``, ``kind``, ``description`` and ``self.settings``, and implement
    :meth:`restore`."""

    name: ClassVar[str] = "method"
    kind: ClassVar[str] = "classical"
    description: ClassVar[str] = ""

    settings: dict[str, Any]

    def __init__(self, ctx: MethodContext):
        self.ctx = ctx
        self.settings = {}

    def restore(self, item: MethodInput) -> torch.Tensor:
        """``item.image`` ``(1, 3, H, W)`` -> restored ``(1, 3, H, W)`` float32 in [0, 1] on the CPU."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "settings": dict(self.settings)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"


def method_info(name: str) -> dict[str, str]:
    """Name, kind and description of a registered method without building it."""
    cls = METHODS.get(name)
    return {"name": name, "kind": cls.kind, "description": cls.description}


def method_options(name: str) -> dict[str, Any]:
    """The keyword options a registered method takes, with their defaults (for ``--list``)."""
    import inspect

    cls = METHODS.get(name)
    out = {}
    for klass in (cls, getattr(cls, "base", None)):  # +inpaint methods also take their denoiser's options
        if klass is None:
            continue
        for k, p in inspect.signature(klass.__init__).parameters.items():
            if k not in ("self", "ctx") and p.default is not inspect.Parameter.empty:
                out.setdefault(k, p.default)
    return out


def build_method(name: str, ctx: MethodContext | None = None, **options: Any) -> Method:
    """Build a registered method; an unknown name raises ``KeyError`` listing the valid ones; a method that
    cannot run here raises :class:`MethodUnavailable`."""
    cls = METHODS.get(name)
    try:
        return cls(ctx or MethodContext(), **options)
    except TypeError as e:
        raise TypeError(f"cannot build method {name!r} with options {sorted(options)}: {e}") from None


def try_build_method(name: str, ctx: MethodContext | None = None, **options: Any
                     ) -> tuple[Method | None, str | None]:
    """``(method, None)`` or ``(None, reason)`` when it is unavailable here: it says so, a package it needs
    cannot be imported, or a file it reads (e.g. a checkpoint) cannot be opened. Unknown names and bad
    options still raise."""
    try:
        return build_method(name, ctx, **options), None
    except MethodUnavailable as e:
        return None, e.reason
    except ImportError as e:
        return None, f"a package it needs cannot be imported ({type(e).__name__}: {e})"
    except OSError as e:
        return None, f"cannot read what it needs ({type(e).__name__}: {e})"


def parse_method_options(items: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``["dip.iterations=100", "nlm.patch_size=7"]`` -> ``{"dip": {"iterations": 100}, "nlm": {...}}``
    (values parsed as YAML scalars)."""
    from ...config import _parse_value

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        method, dot, option = key.strip().rpartition(".")
        if not eq or not dot or not method or not option:
            raise ValueError(f"method option {item!r} must look like METHOD.OPTION=VALUE, e.g. dip.iterations=100")
        METHODS.get(method)
        out.setdefault(method, {})[option] = _parse_value(text)
    return out


def jsonable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with paths as strings (for JSON)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
