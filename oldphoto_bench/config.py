"""Configs: YAML files shipped in ``oldphoto_bench/configs/`` or given by path, plus ``key=value`` overrides.

A config is a nested dict. Sub-trees that name a module carry ``type:`` plus constructor arguments and are
built through a :class:`~oldphoto_bench.registry.Registry`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def _package_dir(group: str) -> Path:
    return Path(str(resources.files("oldphoto_bench") / "configs" / group))


def shipped_configs(group: str) -> list[str]:
    """Names of the YAML configs shipped in ``oldphoto_bench/configs/<group>/``."""
    d = _package_dir(group)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_config(name_or_path: str | Path, group: str) -> dict[str, Any]:
    """Load a shipped config by name (``"tiny"``) or any YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        text = p.read_text()
    else:
        cand = _package_dir(group) / f"{name_or_path}.yaml"
        if not cand.is_file():
            valid = ", ".join(shipped_configs(group)) or "(none)"
            raise KeyError(f"unknown {group} config {str(name_or_path)!r}; shipped: {valid}; or give a .yaml path")
        text = cand.read_text()
    try:
        cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        where = p if p.is_file() else f"{group} config {name_or_path}"
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{where} is not valid YAML{at}: {problem}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"config {name_or_path} must be a mapping at the top level")
    return cfg


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _parse_value(text: str) -> Any:
    # YAML scalars: 1 -> int, 1e-3 -> float, true -> bool, [1, 2] -> list, anything else -> str
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as text
    return value


def _flat_keys(cfg: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        keys.append(key)
        if isinstance(v, Mapping):
            keys.extend(_flat_keys(v, key + "."))
    return keys


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``a.b.c=value`` overrides applied.

    Only existing keys may be set; an unknown key raises ``KeyError`` listing the valid ones.
    """
    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = out
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                valid = ", ".join(_flat_keys(out))
                raise KeyError(f"unknown config key {key!r}; valid keys: {valid}")
            if i == len(parts) - 1:
                node[part] = _checked(key.strip(), node[part], _parse_value(text), text)
            else:
                node = node[part]
    return out


def _checked(key: str, old: Any, new: Any, text: str) -> Any:
    """``new`` if it has the kind of value ``old`` has (a section stays a section, a number a number, ...);
    null is always allowed here (the code using the key says whether it may be null)."""
    if new is None or old is None:
        return new
    wanted = None
    if isinstance(old, Mapping):
        if not isinstance(new, Mapping):
            example = next(iter(old), "KEY")
            raise ValueError(f"--set {key}={text}: {key} is a section (keys: {', '.join(map(str, old))}); set "
                             f"one of its keys, e.g. --set {key}.{example}=...")
    elif isinstance(old, bool):
        wanted = None if isinstance(new, bool) else "true or false"
    elif isinstance(old, int):
        wanted = None if isinstance(new, int) and not isinstance(new, bool) else "an integer"
    elif isinstance(old, float):
        wanted = None if isinstance(new, (int, float)) and not isinstance(new, bool) else "a number"
    elif isinstance(old, str):
        wanted = None if isinstance(new, str) else "text"
    elif isinstance(old, list):
        wanted = None if isinstance(new, list) else "a list, e.g. [1, 2]"
    if wanted is not None:
        raise ValueError(f"--set {key}={text}: {key} must be {wanted} (the recipe has {old!r})")
    return float(new) if isinstance(old, float) and isinstance(new, int) else new


def dump_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
