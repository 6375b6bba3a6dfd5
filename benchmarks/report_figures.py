"""What the report's figure formats cost: CPU and wall time of drawing one run's figures (curves and
one matrix heat-map per method) in PNG only, and in PNG, PDF and SVG, for a run of the default's
size (13 methods, 8 tasks; the matrices are random, the drawing work is the same).

    .venv/bin/python benchmarks/report_figures.py [--methods 13] [--tasks 8] [--out FILE]

Prints the figures and writes JSON (default: benchmarks/results/report_figures.json). CPU time is
the steadier number on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from driftless.report import plot_run
from driftless.report.plots import _pyplot
from driftless.report.results import RESULTS_SCHEMA, matrix_metrics, seen_unseen_curves


def fabricated_results(methods: int, tasks: int) -> dict:
    """A class-incremental results document with random (T+1)×T matrices."""
    rng = np.random.default_rng(0)
    counts = [100] * tasks
    documents = {}
    for m in range(methods):
        values = np.round(rng.uniform(10, 90, size=(tasks + 1, tasks)), 2).tolist()
        documents[f"method-{m}"] = {
            "config": {},
            "metrics": matrix_metrics("class-incremental", values, counts),
            "curves": seen_unseen_curves("class-incremental", values, counts),
            "accuracy_matrix": {
                "rows": ["before training"] + [f"after task {t + 1}" for t in range(tasks)],
                "columns": [f"task {t + 1}" for t in range(tasks)],
                "values": values,
                "counts": counts,
            },
        }
    return {
        "schema": RESULTS_SCHEMA,
        "benchmark": {"name": "fabricated", "protocol": "class-incremental",
                      "tasks": [{"name": f"task {t + 1}"} for t in range(tasks)],
                      "columns": [f"task {t + 1}" for t in range(tasks)]},
        "backbone": {"name": "none"},
        "seed": 0,
        "methods": documents,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", type=int, default=13)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "report_figures.json"
    )
    args = parser.parse_args()
    results = fabricated_results(args.methods, args.tasks)
    _pyplot()  # matplotlib's import is not the figures' cost
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        plot_run(results, Path(scratch) / "warm-up", formats=["png"])  # font cache, first draw
        for formats in (["png"], ["png", "pdf", "svg"]):
            cpu, wall = time.process_time(), time.perf_counter()
            written = plot_run(results, Path(scratch) / "-".join(formats), formats=formats)
            rows["+".join(formats)] = {
                "files": len(written),
                "cpu_seconds": round(time.process_time() - cpu, 2),
                "wall_seconds": round(time.perf_counter() - wall, 2),
            }
    for name, row in rows.items():
        print(
            f"{name:12s} {row['files']:3d} files  {row['cpu_seconds']:6.2f} s CPU  "
            f"{row['wall_seconds']:6.2f} s wall"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"methods": args.methods, "tasks": args.tasks, "machine": platform.platform()}
    args.out.write_text(json.dumps({**summary, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
