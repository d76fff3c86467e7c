"""What ``oldphoto-bench bench`` and ``demo`` print when they finish: the summary table and what is missing.

    from oldphoto_bench.bench.console import console_table, not_computed
    print(console_table(result))        # markdown rows: method, n, mean ± 95% CI per metric, s/photo
    print("\\n".join(not_computed(result)))   # metrics and methods that gave no numbers here, and why

Both read a :class:`~oldphoto_bench.bench.harness.BenchResult`; the files (``summary.md`` and the others)
are written by :mod:`.report`, which formats the cells the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The columns printed when no metrics are named (the others are in summary.md); a suite that has none of
# them (real photos: no-reference metrics only) prints every metric it computed.
MAIN_METRICS = ("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid")


def console_table(result: Any, metrics: Sequence[str] | None = None) -> str:
    """The summary table of ``summary.md`` (mean ± half width of the 95% interval, best in bold, seconds per
    photo), table rows only, with the columns of ``metrics`` that were computed (None: those of
    :data:`MAIN_METRICS`, or every computed metric when none of them was)."""
    from .report import markdown, summarize

    rows = summarize(result)
    computed = {m for r in rows for m in r["metrics"]}
    if metrics is None:
        metrics = [m for m in MAIN_METRICS if m in computed] or sorted(computed)
    keep = set(metrics)
    rows = [{**r, "metrics": {k: v for k, v in r["metrics"].items() if k in keep}} for r in rows]
    return "\n".join(line for line in markdown(result, rows).splitlines() if line.startswith("|"))


def not_computed(result: Any) -> list[str]:
    """One line per metric that could not be built here, per method that gave no numbers and per metric that
    failed for a method, each with its reason (the notes of ``summary.md``). Empty when nothing is missing."""
    lines = [f"metric {m}: not computed: {why}" for m, why in result.unavailable_metrics.items()]
    for r in result.runs:
        if r.reason:
            what = "did not finish" if getattr(r, "failed", False) else "unavailable"
            lines.append(f"method {r.name}: {what}: {r.reason}")
        lines += [f"metric {m}: failed for method {r.name}: {err}" for m, err in r.errors.items()]
    return lines
