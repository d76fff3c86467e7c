"""The benchmark's figures (matplotlib's object API, no pyplot: no display or backend needed).

    bar_<metric>.png        one bar per method: the mean with its 95% CI (per-image metrics) or the set value
                            (KID with ± its std over subsets)
    severity.png            per-image metric against the degradation severity proxy of each photo: the number of
                            degradation operations that fired (from its replayable record; synthetic suites).
                            Dots are photos, lines join the means per operation count.
    severity_presets.png    with ``--severity``: the suite rerun at each preset (e.g. light, paper, heavy),
                            mean ± 95% CI per method and preset
    grid.png                every method on the same crop of each photo (at most 4 photos), with the reference
                            and the input; the crop is centred on the damage mask's centre of mass when there is one
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..provenance import atomic_write_bytes

SEVERITY_METRICS = ("psnr", "ssim", "lpips")
GRID_PHOTOS, GRID_CROP = 4, 192


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _arrow(metric: str) -> str:
    from .report import higher_is_better

    return "higher is better" if higher_is_better(metric) else "lower is better"


def bar_chart(rows: Sequence[Mapping[str, Any]], metric: str) -> Any:
    """A matplotlib Figure: one bar per method with a value for ``metric``."""
    from matplotlib.figure import Figure

    labels, values, errs = [], [], []
    for r in rows:
        cell = r["metrics"].get(metric)
        if not cell:
            continue
        if cell["kind"] == "per_set":
            v, e = cell["value"], cell.get("std")
        else:
            v, e = cell["mean"], cell["ci95"]
        if v is None or not math.isfinite(v):
            continue
        labels.append(r["method"])
        values.append(v)
        errs.append(e if e is not None and math.isfinite(e) else 0.0)
    fig = Figure(figsize=(max(3.5, 0.8 * len(labels) + 1.5), 3.2))
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), values, yerr=errs, capsize=4, color="#4C72B0")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    per_set = any(r["metrics"].get(metric, {}).get("kind") == "per_set" for r in rows)
    ax.set_title(f"{metric} ({_arrow(metric)}; {'set value' if per_set else 'mean ± 95% CI'})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def severity_figure(result: Any, metrics: Sequence[str]) -> Any:
    """Per-image ``metrics`` against each photo's number of degradation operations, per method."""
    from matplotlib.figure import Figure

    ops = {it.name: it.info.get("n_ops") for it in result.suite.items}
    fig = Figure(figsize=(4.2 * len(metrics), 3.4))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        for j, run in enumerate(r for r in result.runs if r.available):
            pts = [(ops[img], v[metric]) for img, v in run.values.items()
                   if metric in v and ops.get(img) is not None and math.isfinite(v[metric])]
            if not pts:
                continue
            x, y = np.array(pts, dtype=float).T
            line = ax.plot([], [], marker="o", label=run.name)[0]
            ax.scatter(x + 0.06 * (j - 1), y, s=12, alpha=0.5, color=line.get_color())
            xs = np.unique(x)
            line.set_data(xs, [y[x == v].mean() for v in xs])
        ax.set_xlabel("degradation operations fired (severity proxy)")
        ax.set_title(f"{metric} ({_arrow(metric)})", fontsize=10)
        ax.grid(alpha=0.3)
    if fig.axes and fig.axes[0].get_legend_handles_labels()[0]:
        fig.axes[0].legend(fontsize=7)
    return fig


def severity_presets_figure(runs: Mapping[str, Any], metrics: Sequence[str]) -> Any:
    """Mean ± 95% CI of ``metrics`` per method against the preset the suite was aged with."""
    from matplotlib.figure import Figure

    from ..metrics import aggregate

    presets = list(runs)
    fig = Figure(figsize=(4.2 * len(metrics), 3.4))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        methods = dict.fromkeys(r.name for res in runs.values() for r in res.runs if r.available)
        for name in methods:
            means, errs = [], []
            for p in presets:
                run = next((r for r in runs[p].runs if r.name == name), None)
                agg = aggregate([v.get(metric, math.nan) for v in run.values.values()]) if run else None
                means.append(agg.mean if agg else math.nan)
                errs.append(agg.ci95 if agg and math.isfinite(agg.ci95) else 0.0)
            ax.errorbar(range(len(presets)), means, yerr=errs, marker="o", capsize=3, label=name)
        ax.set_xticks(range(len(presets)), presets)
        ax.set_xlabel("degradation preset")
        ax.set_title(f"{metric} ({_arrow(metric)})", fontsize=10)
        ax.grid(alpha=0.3)
    if fig.axes and fig.axes[0].get_legend_handles_labels()[0]:
        fig.axes[0].legend(fontsize=7)
    return fig


def _crop_box(mask: torch.Tensor | None, h: int, w: int, side: int) -> tuple[int, int, int, int]:
    ch, cw = min(side, h), min(side, w)
    if mask is not None and mask.sum() > 0:
        ys, xs = torch.nonzero(mask[0, 0] > 0.5, as_tuple=True)
        cy, cx = int(ys.float().mean()), int(xs.float().mean())
    else:
        cy, cx = h // 2, w // 2
    top = min(max(0, cy - ch // 2), h - ch)
    left = min(max(0, cx - cw // 2), w - cw)
    return top, left, ch, cw


def image_grid(result: Any, photos: int = GRID_PHOTOS, crop: int = GRID_CROP) -> Any:
    """A PIL image: rows are photos, columns the reference, the input and every method, on the same crops."""
    from .. import imageio
    from ..viz import contact_sheet

    runs = [r for r in result.runs if r.available and r.name != "input"]
    items = result.suite.items[:photos]
    rows, row_labels = [], []
    for it in items:
        mask = it.load_mask()
        degraded = it.load_degraded()
        top, left, ch, cw = _crop_box(mask, *degraded.shape[-2:], crop)

        def cut(x: torch.Tensor, top: int = top, left: int = left, ch: int = ch, cw: int = cw) -> torch.Tensor:
            return x[..., top : top + ch, left : left + cw]

        row = ([cut(it.load_clean())] if it.clean else []) + [cut(degraded)]
        for r in runs:
            png = result.out / "cache" / r.name / f"{it.name}.png"
            row.append(cut(imageio.load_image(png, max_pixels=None)[0]) if png.is_file() else torch.ones_like(row[-1]))
        rows.append(row)
        row_labels.append(it.name)
    cols = (["reference"] if result.suite.has_reference else []) + ["input"] + [r.name for r in runs]
    return contact_sheet(rows, col_labels=cols, row_labels=row_labels, cell=crop)


def write_figures(result: Any, rows: Sequence[Mapping[str, Any]], severity_runs: Mapping[str, Any] | None,
                  folder: Path) -> dict[str, Path]:
    """Write the figures listed in the module docstring into ``folder``; returns ``{label: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for metric in result.metric_names():
        if any(r["metrics"].get(metric) for r in rows):
            files[f"bar_{metric}"] = _save(bar_chart(rows, metric), folder / f"bar_{metric}.png")
    have = [m for m in SEVERITY_METRICS if any(m in v for r in result.runs for v in r.values.values())]
    if result.suite.has_reference and have:
        files["severity"] = _save(severity_figure(result, have), folder / "severity.png")
    if severity_runs and have:
        files["severity_presets"] = _save(severity_presets_figure(severity_runs, have), folder / "severity_presets.png")
    if result.suite.items and any(r.available for r in result.runs):
        sheet = image_grid(result)
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        files["grid"] = folder / "grid.png"
        atomic_write_bytes(files["grid"], buf.getvalue())
    return files
