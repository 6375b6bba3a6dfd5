"""Reports: results files, plots and tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from driftless.report.plots import (
    FIGURE_FORMATS,
    plot_curves,
    plot_matrix,
    plot_run,
    plot_seed_curves,
)
from driftless.report.results import (
    RESULTS_SCHEMA,
    build_results,
    load_results,
    matrix_metrics,
    recompute_metrics,
    write_results,
)
from driftless.report.table import comparison_table


def write_report(results: dict, out: Path, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write results.json, metrics.csv and the figures (curves, per-dataset panels for
    multi-domain runs, one matrix heat-map per method), each in ``formats`` (PNG, PDF, SVG)."""
    write_results(results, out)
    return [out / "results.json", out / "metrics.csv", *plot_run(results, out, formats)]


__all__ = [
    "FIGURE_FORMATS",
    "RESULTS_SCHEMA",
    "build_results",
    "comparison_table",
    "load_results",
    "matrix_metrics",
    "plot_curves",
    "plot_matrix",
    "plot_run",
    "plot_seed_curves",
    "recompute_metrics",
    "write_report",
    "write_results",
]
