"""Explicit registries: name -> class, with loud failures.

Configs name things by ``type:`` plus constructor arguments (BasicSR style)::

    OPS = Registry("degradation op")

    @OPS.register("gaussian_blur")
    class GaussianBlur: ...

    op = OPS.build({"type": "gaussian_blur", "sigma": [1, 5]})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class Registry:
    """A named mapping from strings to callables (usually classes)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``obj`` under ``name`` (default: ``obj.name`` or ``obj.__name__``)."""

        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or getattr(obj, "name", None) or obj.__name__
            if key in self._items:
                raise KeyError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise KeyError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def build(self, cfg: Mapping[str, Any] | str, **extra: Any) -> Any:
        """Instantiate from ``{"type": name, **kwargs}`` (or a bare name)."""
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        if "type" not in cfg:
            raise KeyError(f"{self.kind} config needs a 'type' key; got keys {sorted(cfg)}")
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        kwargs.update(extra)
        cls = self.get(cfg["type"])
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise TypeError(f"cannot build {self.kind} {cfg['type']!r} with {sorted(kwargs)}: {e}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
