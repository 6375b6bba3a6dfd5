"""The results schema: ``results.json`` (everything, the full accuracy matrices with sample counts)
and ``metrics.csv`` (one row per method). Any metric can be recomputed from ``results.json``."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftless import __version__
from driftless.atomic import atomic_write
from driftless.config import LOCATION_FIELDS
from driftless.metrics import domain_accuracies, seen_unseen_accuracies, summarize

if TYPE_CHECKING:  # the engine imports torch and lightning: not needed to read results
    from driftless.benchmarks.protocol import Benchmark
    from driftless.engine.runner import RunOutcome

RESULTS_SCHEMA = "driftless.results/1"

CELL_LABEL_SPACE = {
    "class-incremental": (
        "row 0 (before training): every block over all classes; row t ≥ 1: blocks k ≤ t over all classes "
        "seen so far, blocks k > t (future) over all classes of the benchmark, null if not evaluated"
    ),
    "few-shot class-incremental": (
        "as class-incremental: column k = session k's classes (k = 1 the base session); row t ≥ 1: "
        "sessions k ≤ t over all classes seen so far"
    ),
    "multi-domain": "every dataset over its own classes",
    "domain-incremental": (
        "every test domain over all classes of the benchmark, in every row; column_tasks gives the "
        "task that trains on each column's domain (-1: none)"
    ),
}


def _clean(value: float | None) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def saved_matrix(values: list[list[float | None]]) -> np.ndarray:
    """A results.json accuracy matrix as a float64 array, NaN where a cell was not evaluated."""
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=np.float64)


def matrix_metrics(
    protocol: str,
    values: list[list[float | None]],
    counts: list[int],
    column_tasks: list[int] | None = None,
) -> dict[str, float | None]:
    """The protocol's summary from a saved matrix (row 0 = before training, as in results.json)."""
    trained = saved_matrix(values)[1:]
    return {k: _clean(v) for k, v in summarize(protocol, trained, counts, column_tasks).items()}


def _aligned(column_tasks: list[int] | None, tasks: int) -> bool:
    return column_tasks is not None and sorted(column_tasks) == list(range(tasks))


def seen_unseen_curves(
    protocol: str,
    values: list[list[float | None]],
    counts: list[int],
    column_tasks: list[int] | None = None,
) -> dict[str, list[float | None]]:
    """After each task (rows 1…T of a saved matrix): ``seen``, accuracy on what was learned so far
    (class-incremental and FSCIL: weighted by test samples, acc_t; multi-domain: mean over the
    datasets learned; domain-incremental: the learned domains' test sets weighted by samples, or
    all test domains when no task trains on them, as CORe50's), and ``unseen``, the mean over the
    blocks, datasets or domains not yet learned (null after the last task or when not
    evaluated)."""
    trained = saved_matrix(values)[1:]
    if protocol == "domain-incremental":
        if not _aligned(column_tasks, len(trained)):
            alls = domain_accuracies(trained, counts)
            return {"seen": [_clean(v) for v in alls], "unseen": [None] * len(trained)}
        order = np.argsort(column_tasks)
        trained, counts = trained[:, order], [counts[i] for i in order]
    weights = None if protocol == "multi-domain" else counts
    seen, unseen = seen_unseen_accuracies(trained, weights)
    return {"seen": [_clean(v) for v in seen], "unseen": [_clean(v) for v in unseen]}


def _benchmark_info(benchmark: Benchmark) -> dict[str, Any]:
    return {
        "name": benchmark.name,
        "protocol": benchmark.protocol,
        "description": benchmark.description,
        "num_classes": len(benchmark.classes),
        "tasks": [
            {
                "name": t.name,
                "classes": [benchmark.classes[c].name for c in t.class_ids],
                "train_samples": int(sum(len(s.indices) for s in t.train)),
            }
            for t in benchmark.tasks
        ],
        "columns": [e.name for e in benchmark.eval_splits],
        "seed_varies": list(benchmark.seed_varies),
    }


def build_results(outcome: RunOutcome) -> dict[str, Any]:
    """The results document of a finished run."""
    benchmark = outcome.benchmark
    counts = [len(e.samples.indices) for e in benchmark.eval_splits]
    column_tasks = [e.task_index for e in benchmark.eval_splits]
    rows = ["before training"] + [f"after {t.name}" for t in benchmark.tasks]
    methods = {}
    for name, m in outcome.methods.items():
        values = [[_clean(v) for v in row] for row in m.matrix.tolist()]
        methods[name] = {
            "method": m.method or name,
            "overrides": m.overrides,
            "config": m.config,
            "metrics": matrix_metrics(benchmark.protocol, values, counts, column_tasks),
            "curves": seen_unseen_curves(benchmark.protocol, values, counts, column_tasks),
            "accuracy_matrix": {
                "rows": rows,
                "columns": [e.name for e in benchmark.eval_splits],
                "values": values,
                "counts": counts,
                "column_tasks": column_tasks,
                "cell_label_space": CELL_LABEL_SPACE[benchmark.protocol],
            },
            "training": m.training,
            "timings": {
                "learn_seconds": m.learn_seconds,
                "eval_seconds": m.eval_seconds,
                "total_seconds": sum(m.learn_seconds) + sum(m.eval_seconds),
            },
        }
    return {
        "schema": RESULTS_SCHEMA,
        "driftless_version": __version__,
        "benchmark": _benchmark_info(benchmark),
        "backbone": {"name": outcome.backbone_name, "fingerprint": outcome.backbone_fingerprint},
        "seed": outcome.config.seed,
        "config": outcome.config.model_dump(mode="json", exclude=set(LOCATION_FIELDS)),
        "methods": methods,
        "timings": {
            "feature_seconds": outcome.feature_seconds,
            "images_encoded": outcome.images_encoded,
        },
    }


def write_results(results: dict[str, Any], out: Path) -> None:
    """Write ``results.json`` and ``metrics.csv`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(
        out / "results.json", lambda fh: fh.write((json.dumps(results, indent=2) + "\n").encode())
    )
    keys = sorted({k for m in results["methods"].values() for k in m["metrics"]})
    with (out / "metrics.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", *keys, "total_seconds"])
        for name, m in results["methods"].items():
            cells = [m["metrics"].get(k) for k in keys]
            writer.writerow(
                [
                    name,
                    *("" if v is None else f"{v:.4f}" for v in cells),
                    f"{m['timings']['total_seconds']:.3f}",
                ]
            )


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``results.json`` (or a run directory's), checking its schema."""
    from driftless.errors import DataError

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DataError(f"results file not found: {path}")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"results file {path} is not valid JSON: {exc}") from None
    if results.get("schema") != RESULTS_SCHEMA:
        raise DataError(
            f"results file {path} has schema {results.get('schema')!r}, expected {RESULTS_SCHEMA}"
        )
    return results


def recompute_metrics(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Every method's metrics recomputed from its saved accuracy matrix."""
    protocol = results["benchmark"]["protocol"]
    return {
        name: matrix_metrics(
            protocol,
            m["accuracy_matrix"]["values"],
            m["accuracy_matrix"]["counts"],
            m["accuracy_matrix"].get("column_tasks"),
        )
        for name, m in results["methods"].items()
    }
