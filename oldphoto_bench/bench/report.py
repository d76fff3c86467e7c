"""The benchmark's report files, from a :class:`~oldphoto_bench.bench.harness.BenchResult`.

    per_image.csv   long format: method, image, metric, value (``inf`` for an exact restoration under PSNR,
                    empty where the metric failed on that photo)
    summary.csv     one row per method: method, n, then one column per metric (lower case: psnr, ssim, ms_ssim,
                    lpips, fid, kid, then the others by name), empty where unavailable, then ``note`` (why a
                    method has no values). Per-image metrics: the mean over the photos' finite values; per-set
                    metrics (fid, kid): the set's value.
    summary.md      mean ± half width of the 95% Student-t interval, an arrow for the better direction, the
                    best value of each column in bold, and every unavailable metric or method with its reason
    summary.json    everything in summary.md as numbers (aggregates, set scores, errors, seconds, settings)
    figures/        bar_<metric>.png, severity.png (and severity_presets.png), grid.png (:mod:`.figures`)
    manifest.json   versions, git revision, seeds, settings, suite, metric contracts and method settings
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ..metrics import METRICS, aggregate
from ..provenance import atomic_write_bytes, write_manifest

DIGITS = {"psnr": 2, "fid": 2}  # decimals in summary.md (3 for the others)
KID_NOTE = ("KID (unbiased MMD^2, mean ± std over random subsets) is the set metric to read on small test "
            "sets; FID is biased upwards below a few thousand photos and comparable only at equal n.")


def higher_is_better(metric: str) -> bool:
    return bool(METRICS.get(metric).higher_is_better)


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def summarize(result: Any) -> list[dict[str, Any]]:
    """One dict per method: ``method``, ``n``, ``note``, ``seconds`` (mean per photo), and per metric either
    an :class:`~oldphoto_bench.metrics.Aggregate` dict (per image) or a ``SetScore`` dict (per set)."""
    rows = []
    for run in result.runs:
        row: dict[str, Any] = {"method": run.name, "kind": run.kind, "n": len(run.values), "note": run.reason or "",
                               "metrics": {}}
        secs = [s for s in run.seconds.values() if math.isfinite(s)]
        row["seconds"] = sum(secs) / len(secs) if secs else None
        for name in result.metric_names():
            if name in run.set_scores:
                row["metrics"][name] = {"kind": "per_set", **run.set_scores[name]}
            elif any(name in v for v in run.values.values()):
                agg = aggregate([v.get(name, math.nan) for v in run.values.values()])
                row["metrics"][name] = {"kind": "per_image", **agg.as_dict()}
        rows.append(row)
    return rows


def _value(cell: Mapping[str, Any] | None) -> float:
    if not cell:
        return math.nan
    return float(cell["value"] if cell["kind"] == "per_set" else cell["mean"])


def write_csvs(result: Any, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "image", "metric", "value"])
    for run in result.runs:
        for image, values in run.values.items():
            for metric in result.metric_names():
                if metric in values:
                    w.writerow([run.name, image, metric, _fmt(values[metric])])
    atomic_write_bytes(result.out / "per_image.csv", buf.getvalue().encode())

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = result.metric_names()
    w.writerow(["method", "n", *names, "note"])
    for row in rows:
        w.writerow([row["method"], row["n"], *[_fmt(_value(row["metrics"].get(m))) for m in names], row["note"]])
    atomic_write_bytes(result.out / "summary.csv", buf.getvalue().encode())


def _cell(cell: Mapping[str, Any] | None, metric: str) -> str:
    if not cell:
        return ""
    d = DIGITS.get(metric, 3)
    if cell["kind"] == "per_set":
        v, std = cell["value"], cell.get("std")
        return f"{v:.{d}f}" + (f" ± {std:.{d}f}" if std is not None else "")
    from ..metrics import Aggregate

    return Aggregate(**{k: v for k, v in cell.items() if k != "kind"}).format(d)


def _best(rows: list[dict[str, Any]], metric: str) -> set[str]:
    vals = {r["method"]: _value(r["metrics"].get(metric)) for r in rows}
    finite = {k: v for k, v in vals.items() if math.isfinite(v)}
    if not finite:
        return set()
    target = (max if higher_is_better(metric) else min)(finite.values())
    return {k for k, v in finite.items() if v == target}


def markdown(result: Any, rows: list[dict[str, Any]]) -> str:
    names = result.metric_names()
    shown = [m for m in names if any(m in r["metrics"] for r in rows)]
    s = result.suite.settings
    lines = [f"# Benchmark: {s['suite']}", ""]
    ref = (f"aged with preset `{s['preset']}`, seed {s['seed']}" if result.suite.has_reference
           else "real photos without references: no-reference metrics only")
    lines += [f"{len(result.suite)} photo(s), {ref}; {s['resize']}; {s['quantisation']}.", ""]
    head = ["method", "n"] + [f"{m} {'↑' if higher_is_better(m) else '↓'}" for m in shown] + ["s/photo"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {m: _best(rows, m) for m in shown}
    for r in rows:
        cells = [r["method"], str(r["n"])]
        for m in shown:
            text = _cell(r["metrics"].get(m), m)
            cells.append(f"**{text}**" if text and r["method"] in best[m] else text)
        cells.append(f"{r['seconds']:.2f}" if r["seconds"] is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per-image metrics: mean ± half width of the 95% Student-t confidence interval over the photos "
              "(infinite values, e.g. PSNR of an exact restoration, are counted, not averaged). "
              "↑ higher is better, ↓ lower is better; the best value of each column is in bold."]
    if "kid" in names or "fid" in names:
        lines += ["", f"**{KID_NOTE}**"]
    notes = []
    notes += [f"- metric `{m}` unavailable: {why}" for m, why in result.unavailable_metrics.items()]
    notes += [f"- method `{r.name}` {'did not finish' if getattr(r, 'failed', False) else 'unavailable'}: {r.reason}"
              for r in result.runs if r.reason]
    for r in result.runs:
        notes += [f"- `{m}` failed for `{r.name}` ({err})" for m, err in r.errors.items()]
        if r.settings.get("mask"):
            notes.append(f"- `{r.name}` mask: {r.settings['mask']}")
    if notes:
        lines += ["", "## Notes", "", *notes]
    lines += ["", "## Metrics", ""]
    lines += [f"- `{m.name}` ({m.kind.replace('_', ' ')}, {'higher' if m.higher_is_better else 'lower'} is "
              f"better): {m.notes}" for m in result.metrics]
    lines += ["", "## Methods", ""]
    lines += [f"- `{r.name}` ({r.kind}): {r.description}" for r in result.runs]
    lines += ["", "Settings, versions and every metric's contract: `manifest.json`.", ""]
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("scipy", "piq", "lpips", "bm3d", "matplotlib", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_report(result: Any, severity_runs: Mapping[str, Any] | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Path]:
    """Write every report file (see the module docstring) into ``result.out``; returns their paths."""
    from .figures import write_figures

    out = result.out
    rows = summarize(result)
    write_csvs(result, rows)
    atomic_write_bytes(out / "summary.md", markdown(result, rows).encode())
    summary = {"settings": result.settings, "suite": result.suite.settings, "rows": rows,
               "unavailable_metrics": result.unavailable_metrics,
               "errors": {r.name: r.errors for r in result.runs if r.errors}}
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=1, default=str) + "\n").encode())
    figures = write_figures(result, rows, severity_runs, out / "figures")
    suite = {**result.suite.settings, "images": [dict(it.info) for it in result.suite.items]}
    write_manifest(out / "manifest.json", seed=result.settings["seed"], config=result.settings, suite=suite,
                   metrics={m.name: m.contract() for m in result.metrics},
                   unavailable_metrics=result.unavailable_metrics,
                   methods={r.name: {"kind": r.kind, "description": r.description, "settings": r.settings,
                                     "unavailable": r.reason, "calls_this_run": r.calls} for r in result.runs},
                   severity={"per_photo_proxy": "number of degradation operations that fired (suite.json n_ops)",
                             "presets": list(severity_runs or [])},
                   package_versions=_versions())
    files = {name: out / name for name in ("per_image.csv", "summary.csv", "summary.md", "summary.json",
                                           "manifest.json")}
    files.update(figures)
    log(f"wrote {out / 'summary.md'} and {len(figures)} figure(s) in {out / 'figures'}")
    return files
