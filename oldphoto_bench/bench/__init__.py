"""The benchmark harness: suites of photos, methods behind one interface, cached runs, tables and figures.

    from oldphoto_bench.bench import run_benchmark
    result = run_benchmark("embedded", ["input", "nlm", "tv"], out="bench_out", preset="paper", seed=0)

Command line: ``oldphoto-bench bench --suite embedded --methods input,nlm,tv --out bench_out``.
Pieces: :mod:`.suites` (what is restored), :mod:`.methods` (who restores it), :mod:`.harness` (running,
caching, scoring), :mod:`.report` and :mod:`.figures` (what is written).
"""

from .harness import DEFAULT_METHODS, BenchResult, MethodRun, build_metrics, run_benchmark
from .methods import (
    METHODS,
    Method,
    MethodContext,
    MethodInput,
    MethodUnavailable,
    build_method,
    try_build_method,
)
from .report import summarize, write_report
from .suites import SUITE_FORMS, SUITES, Suite, SuiteItem, parse_suite, prepare_suite

__all__ = [
    "DEFAULT_METHODS", "METHODS", "SUITES", "SUITE_FORMS", "BenchResult", "Method", "MethodContext", "MethodInput",
    "MethodRun", "MethodUnavailable", "Suite", "SuiteItem", "build_method", "build_metrics", "parse_suite",
    "prepare_suite", "run_benchmark", "summarize", "try_build_method", "write_report",
]
