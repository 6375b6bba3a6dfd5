"""Reports: results files, plots and tables."""

from __future__ import annotations

from pathlib import Path

from driftless.config import label_file_stem
from driftless.report.plots import plot_curves, plot_matrix
from driftless.report.results import (
    RESULTS_SCHEMA,
    build_results,
    load_results,
    matrix_metrics,
    recompute_metrics,
    write_results,
)
from driftless.report.table import comparison_table


def write_report(results: dict, out: Path) -> list[Path]:
    """Write results.json, metrics.csv, curves.png and one matrix-<method>.png per method."""
    write_results(results, out)
    written = [out / "results.json", out / "metrics.csv", out / "curves.png"]
    plot_curves(results, out / "curves.png")
    for method in results["methods"]:
        path = out / f"matrix-{label_file_stem(method)}.png"
        plot_matrix(results, method, path)
        written.append(path)
    return written


__all__ = [
    "RESULTS_SCHEMA",
    "build_results",
    "comparison_table",
    "load_results",
    "matrix_metrics",
    "plot_curves",
    "plot_matrix",
    "recompute_metrics",
    "write_report",
    "write_results",
]
