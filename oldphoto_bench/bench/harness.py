"""Running a benchmark: every method on every photo of a suite, every metric on every output, with a cache.

    result = run_benchmark("embedded", ["input", "nlm"], out="bench_out")

Files under ``OUT`` (the report files are written by :mod:`.report`)::

    data/                       the prepared suite (:mod:`.suites`)
    cache/<method>/<image>.png  the method's output (8-bit PNG: scored exactly as a saved result would be)
    cache/<method>/<image>.json seconds, per-image metric values (with a key of each metric's settings) and
                                errors; per-set features in <image>.<features key>.npy
    cache/<method>/method.json  the method's settings: when they change, its cached outputs are discarded
    cache/reference/            per-set features of the clean references

A photo is done once its PNG and JSON exist, so an interrupted run resumes where it stopped, and a rerun
calls no method and recomputes no metric (a metric that became available since, e.g. once its weights are
fetched, is computed on the cached outputs). Methods run photo by photo on ``device`` (photos differ in
size, and most methods are per-photo by nature); metrics run on ``device`` in batches of up to
``metric_batch`` equal-sized outputs (a batch that fails is retried photo by photo, so one photo a metric
cannot score, e.g. one too small for MS-SSIM, gets NaN and the reason without losing the others).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import imageio
from ..metrics import METRICS, Metric, PerImageMetric, SetMetric, try_build
from ..provenance import atomic_write_bytes
from ..seeding import derive_seed
from .methods import Method, MethodContext, MethodInput, MethodUnavailable, method_info, try_build_method
from .methods import method_options as known_options
from .suites import DEFAULT_MAX_SIDE, Suite, prepare_suite

DEFAULT_METHODS = ("input", "nlm", "bilateral", "tv", "ours")
METRIC_ORDER = ("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid")  # first columns; the others follow by name
SEED_METHOD = 7  # derive_seed(seed, SEED_METHOD, crc32(name)): the per-photo seed handed to methods


@dataclass
class MethodRun:
    """One method's results. ``reason`` is set (and everything else empty) when it could not run: unavailable
    here (a missing package or checkpoint), or ``failed`` (it raised an error on a photo)."""

    name: str
    kind: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # image -> metric -> value
    set_scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> SetScore.as_dict()
    errors: dict[str, str] = field(default_factory=dict)  # metric -> first error seen
    seconds: dict[str, float] = field(default_factory=dict)  # image -> seconds the method took
    calls: int = 0  # photos actually restored in this run (0 on a fully cached rerun)
    failed: bool = False  # it raised an error while running (``reason`` says where); not merely unavailable

    @property
    def available(self) -> bool:
        return self.reason is None


class PhotoError(Exception):
    """A method raised an error on one photo (``text``: its type and first line)."""

    def __init__(self, photo: str, text: str):
        self.photo, self.text = photo, text
        super().__init__(f"{photo}: {text}")

    def __reduce__(self):
        return type(self), (self.photo, self.text)


@dataclass
class BenchResult:
    out: Path
    suite: Suite
    metrics: list[Metric]
    unavailable_metrics: dict[str, str]
    runs: list[MethodRun]
    settings: dict[str, Any]

    def metric_names(self) -> list[str]:
        return order_metrics([m.name for m in self.metrics] + list(self.unavailable_metrics))


def order_metrics(names: Sequence[str]) -> list[str]:
    first = [n for n in METRIC_ORDER if n in names]
    return first + sorted(n for n in dict.fromkeys(names) if n not in METRIC_ORDER)


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def build_metrics(names: Sequence[str] | None = None, device: str = "cpu", weights_dir: str | Path | None = None,
                  has_reference: bool = True) -> tuple[list[Metric], dict[str, str]]:
    """``(metrics, {name: reason})``: every registered metric (or ``names``) that can be built here.

    On a suite without references only no-reference per-image metrics apply. ``device`` and ``weights_dir``
    go to the metrics that take them. Unknown names raise ``KeyError`` listing the valid ones.
    """
    built, missing = [], {}
    for name in names if names is not None else METRICS.names():
        cls = METRICS.get(name)
        if not has_reference and (cls.reference == "full" or cls.kind == "per_set"):
            missing[name] = "needs clean references; this suite has none (real photos)"
            continue
        kwargs: dict[str, Any] = {}
        if _accepts(cls, "device"):
            kwargs["device"] = device
        if weights_dir is not None and _accepts(cls, "weights_dir"):
            kwargs["weights_dir"] = weights_dir
        metric, reason = try_build(name, **kwargs)
        if metric is None:
            missing[name] = reason or "unavailable"
        else:
            built.append(metric)
    return built, missing


def settings_key(settings: Any) -> str:
    """A short stable hash of JSON-serialisable settings (cache keys)."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _feature_key(m: SetMetric) -> str:
    s = m.settings
    return "feat-" + settings_key({k: s.get(k) for k in ("features", "weights", "preprocess", "resize")})


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=str) + "\n").encode())


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _chunks(entries: Sequence[Any], key: Callable[[Any], Any], size: int) -> list[list[Any]]:
    """Group ``entries`` by ``key`` (first-seen order) and cut each group into lists of at most ``size``."""
    groups: dict[Any, list[Any]] = {}
    for e in entries:
        groups.setdefault(key(e), []).append(e)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def _load(path: Path) -> torch.Tensor:
    return imageio.load_image(path, max_pixels=None)[0]


class _Scorer:
    """Per-image metrics and per-set features of outputs, in batches of equal-sized photos on ``device``.

    Per-image values live in each photo's cache record, keyed by a hash of each metric's contract (a metric
    whose settings changed is recomputed); per-set features are cached as ``.npy`` files.
    """

    def __init__(self, metrics: Sequence[Metric], device: str = "cpu", batch_size: int = 8):
        self.per_image = [m for m in metrics if isinstance(m, PerImageMetric)]
        self.per_set = [m for m in metrics if isinstance(m, SetMetric)]
        self.keys = {m.name: settings_key(m.contract()) for m in self.per_image}
        self.device, self.batch_size = device, max(1, int(batch_size))

    def stale(self, rec: dict[str, Any]) -> tuple[str, ...]:
        keys = rec.get("metric_keys", {})
        return tuple(m.name for m in self.per_image if keys.get(m.name) != self.keys[m.name])

    def score(self, jobs: Sequence[tuple[dict[str, Any], Path, Path | None]]) -> Iterator[list[Any]]:
        """``jobs``: (record, output PNG, reference PNG or None). Fills the stale metrics of every record,
        one batch of equal-sized photos at a time, yielding each batch's jobs when done."""
        by_name = {m.name: m for m in self.per_image}
        for chunk in _chunks(jobs, lambda j: (_load_shape(j[1]), self.stale(j[0])), self.batch_size):
            names = self.stale(chunk[0][0])
            p = torch.cat([_load(j[1]) for j in chunk]).to(self.device)
            r = torch.cat([_load(j[2]) for j in chunk]).to(self.device) if chunk[0][2] is not None else None
            for name in names:
                m = by_name[name]
                ref = r if m.reference == "full" else None
                try:
                    vals = [(float(v), None) for v in m(p, ref)]
                except Exception:  # find which photo fails (e.g. too small for MS-SSIM) and why
                    vals = [self._one(m, p[i : i + 1], None if ref is None else ref[i : i + 1]) for i in range(len(p))]
                for (rec, _, _), (v, err) in zip(chunk, vals, strict=True):
                    rec.setdefault("metrics", {})[name] = v
                    rec.setdefault("metric_keys", {})[name] = self.keys[name]
                    errors = rec.setdefault("errors", {})
                    if err is None:
                        errors.pop(name, None)
                    else:
                        errors[name] = err
            yield chunk

    @staticmethod
    def _one(m: PerImageMetric, p: torch.Tensor, r: torch.Tensor | None) -> tuple[float, str | None]:
        try:
            return float(m(p, r)[0]), None
        except Exception as e:
            return float("nan"), _first_line(e)

    def features(self, folder: Path, jobs: Sequence[tuple[str, Path]]) -> dict[str, dict[str, np.ndarray]]:
        """Per-set features ``{feature key: {name: (d,) array}}`` of ``jobs`` (name, PNG), cached as .npy."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for m in self.per_set:
            key = _feature_key(m)
            if key in out:
                continue
            feats = out[key] = {}
            todo = []
            for name, png in jobs:
                path = folder / f"{name}.{key}.npy"
                if path.is_file():
                    feats[name] = np.load(path)
                else:
                    todo.append((name, png))
            for chunk in _chunks(todo, lambda j: tuple(_load_shape(j[1])), self.batch_size):
                f = m.features(torch.cat([_load(png) for _, png in chunk]).to(self.device))
                for (name, _), row in zip(chunk, f, strict=True):
                    folder.mkdir(parents=True, exist_ok=True)
                    np.save(folder / f"{name}.{key}.npy", row.reshape(-1))
                    feats[name] = row.reshape(-1)
            out[key] = {name: feats[name] for name, _ in jobs}  # suite order
        return out


def _load_shape(path: Path) -> tuple[int, int]:
    """(height, width) of an image file from its header."""
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def _check_method_cache(folder: Path, desc: dict[str, Any], log: Callable[[str], None]) -> None:
    """Discard a method's cached outputs when its settings changed since they were made."""
    meta = folder / "method.json"
    old = _read_json(meta)
    if old is not None and old.get("key") != settings_key(desc["settings"]):
        stale = [p for p in folder.iterdir() if p.suffix in (".png", ".json", ".npy") and p.name != "method.json"]
        for p in stale:
            p.unlink()
        log(f"{desc['name']}: settings changed since the cached outputs were made; recomputing {len(stale)} file(s)")
    _write_json(meta, {"key": settings_key(desc["settings"]), **desc})


def run_method(method: Method, suite: Suite, out: Path, scorer: _Scorer, seed: int,
               ref_features: dict[str, dict[str, np.ndarray]], progress: bool = True,
               log: Callable[[str], None] = print) -> MethodRun:
    """Restore every photo of ``suite`` with ``method`` that has no cached output, then score what is not
    scored yet (see the module docstring)."""
    from tqdm import tqdm

    desc = method.describe()
    run = MethodRun(method.name, desc["kind"], desc["description"], desc["settings"])
    folder = out / "cache" / method.name
    folder.mkdir(parents=True, exist_ok=True)
    _check_method_cache(folder, desc, log)
    records: dict[str, dict[str, Any]] = {}
    for item in tqdm(suite.items, desc=method.name, unit="img", disable=not progress):
        png, js = folder / f"{item.name}.png", folder / f"{item.name}.json"
        rec = _read_json(js) if png.is_file() else None
        if rec is None:
            image, mask = item.load_degraded(), item.load_mask()
            photo_seed = derive_seed(seed, SEED_METHOD, zlib.crc32(item.name.encode()))
            t0 = time.perf_counter()
            try:
                restored = method.restore(MethodInput(image, item.name, photo_seed, mask))
            except (MethodUnavailable, ImportError, KeyboardInterrupt):
                raise
            except Exception as e:
                raise PhotoError(item.name, _first_line(e)) from e
            rec = {"seconds": time.perf_counter() - t0}
            if tuple(restored.shape) != tuple(image.shape):
                raise ValueError(f"{method.name} returned {tuple(restored.shape)} for a {tuple(image.shape)} photo")
            imageio.save_image(restored, png)
            _write_json(js, rec)  # from here on the photo counts as restored, even if scoring is interrupted
            run.calls += 1
        records[item.name] = rec
    jobs = [(records[it.name], folder / f"{it.name}.png", it.clean) for it in suite.items
            if scorer.stale(records[it.name])]
    with tqdm(total=len(jobs), desc=f"{method.name} metrics", unit="img", disable=not progress or not jobs) as bar:
        for chunk in scorer.score(jobs):
            for rec, png, _ in chunk:
                _write_json(png.with_suffix(".json"), rec)
            bar.update(len(chunk))
    feats = scorer.features(folder, [(it.name, folder / f"{it.name}.png") for it in suite.items])
    for item in suite.items:
        rec = records[item.name]
        run.values[item.name] = {k: float(v) for k, v in rec.get("metrics", {}).items()}
        run.seconds[item.name] = float(rec.get("seconds", math.nan))
        for k, e in rec.get("errors", {}).items():
            run.errors.setdefault(k, f"{item.name}: {e}")
    for m in scorer.per_set:
        key = _feature_key(m)
        try:
            pred, ref = np.stack(list(feats[key].values())), np.stack(list(ref_features[key].values()))
            run.set_scores[m.name] = m.score_features(pred, ref).as_dict()
        except Exception as e:
            run.errors[m.name] = _first_line(e)
    return run


def _run_or_reason(method: Method, suite: Suite, out: Path, scorer: _Scorer, seed: int,
                   ref_features: dict[str, dict[str, np.ndarray]], progress: bool, log: Callable[[str], None]
                   ) -> MethodRun:
    """:func:`run_method`, but a method that breaks down (a package it imports only when it runs is missing,
    or any error on a photo) gets an empty row with the reason, so that the other methods still run."""
    desc = method.describe()
    try:
        return run_method(method, suite, out, scorer, seed, ref_features, progress, log)
    except KeyboardInterrupt:
        raise
    except MethodUnavailable as e:
        reason, failed = e.reason, False
    except ImportError as e:
        reason, failed = f"a package it needs cannot be imported ({_first_line(e)})", False
    except PhotoError as e:
        reason, failed = f"failed on photo {e.photo}: {e.text}", True
    except Exception as e:
        reason, failed = f"failed: {_first_line(e)}", True
    log(f"{method.name}: {'failed' if failed else 'unavailable'}: {reason}")
    return MethodRun(method.name, desc["kind"], desc["description"], desc["settings"], reason=reason, failed=failed)


def _reference_features(suite: Suite, out: Path, scorer: _Scorer) -> dict[str, dict[str, np.ndarray]]:
    if not scorer.per_set:
        return {}
    return scorer.features(out / "cache" / "reference", [(it.name, it.clean) for it in suite.items])


def run_benchmark(suite: str, methods: Sequence[str | Method] = DEFAULT_METHODS, out: str | Path = "bench",
                  preset: str = "paper", seed: int = 0, checkpoints: str | Path | None = None, device: str = "cpu",
                  metrics: Sequence[str | Metric] | None = None, max_side: int = DEFAULT_MAX_SIDE,
                  max_images: int | None = None, method_options: dict[str, dict[str, Any]] | None = None,
                  weights_dir: str | Path | None = None, progress: bool = True, report: bool = True,
                  severity: Sequence[str] | None = None, metric_batch: int = 8,
                  log: Callable[[str], None] = print) -> BenchResult:
    """Run ``methods`` on ``suite`` into ``out`` and (``report=True``) write the report files (:mod:`.report`).

    ``methods``: registered names, or :class:`Method` instances (e.g. for tests). ``metrics``: names or built
    metrics; ``None`` builds every metric that can be built here. ``method_options``: ``{method: {option:
    value}}``. ``severity``: presets (e.g. ``["light", "paper", "heavy"]``) to rerun the suite at, into
    ``OUT/severity/<preset>/``, for the metric-against-severity figure. ``metric_batch``: equal-sized outputs
    scored together (one batch per metric call, on ``device``).
    """
    from ..restore import default_checkpoints

    out = Path(out)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA device")
    names = [m if isinstance(m, str) else m.name for m in methods]
    for m in methods:
        if isinstance(m, str):
            method_info(m)  # unknown names fail before any work, listing the valid ones
    if len(set(names)) != len(names):
        raise ValueError(f"methods listed twice: {names}")
    bad_opts = sorted(set(method_options or {}) - set(names))
    if bad_opts:
        raise KeyError(f"options given for method(s) {bad_opts} that are not run; methods: {', '.join(names)}")
    for name, opts in (method_options or {}).items():
        valid = known_options(name)
        unknown = sorted(set(opts) - set(valid))
        if unknown:
            raise KeyError(f"unknown option(s) {unknown} of method {name!r}; valid options: "
                           f"{', '.join(valid) or '(none)'}")
    the_suite = prepare_suite(suite, out, preset, seed, max_side, max_images, progress, log)
    by_name = None if metrics is None else [m for m in metrics if isinstance(m, str)]
    built, missing = build_metrics(by_name, device, weights_dir, the_suite.has_reference)
    for m in metrics or ():
        if isinstance(m, Metric):
            if not the_suite.has_reference and (m.reference == "full" or m.kind == "per_set"):
                missing[m.name] = "needs clean references; this suite has none (real photos)"
            else:
                built.append(m)
    scorer = _Scorer(built, device, metric_batch)
    ref_features = _reference_features(the_suite, out, scorer)
    ckpt = Path(checkpoints) if checkpoints is not None else default_checkpoints()
    ctx = MethodContext(ckpt, device, int(seed), the_suite.has_reference)
    runs = []
    for m in methods:
        if isinstance(m, Method):
            method, reason = m, None
        else:
            method, reason = try_build_method(m, ctx, **(method_options or {}).get(m, {}))
        if method is None:
            info = method_info(m)
            log(f"{m}: unavailable: {reason}")
            runs.append(MethodRun(m, info["kind"], info["description"], reason=reason))
            continue
        runs.append(_run_or_reason(method, the_suite, out, scorer, int(seed), ref_features, progress, log))
        del method  # free networks before the next method
    settings = {"suite": suite, "preset": preset, "seed": int(seed), "max_side": int(max_side),
                "max_images": max_images, "checkpoints": str(ckpt), "device": device, "methods": names,
                "method_options": method_options or {}, "weights_dir": None if weights_dir is None else str(weights_dir),
                "method_seed": f"derive_seed(seed, {SEED_METHOD}, crc32(image name))"}
    result = BenchResult(out, the_suite, built, missing, runs, settings)
    if report:
        from .report import write_report

        sweep = None
        if severity and the_suite.has_reference:
            sweep = {p: result if p == preset else run_benchmark(
                suite, methods, out / "severity" / p, p, seed, checkpoints, device, metrics, max_side, max_images,
                method_options, weights_dir, progress, report=False, metric_batch=metric_batch, log=log)
                for p in severity}
        write_report(result, severity_runs=sweep, log=log)
    return result
