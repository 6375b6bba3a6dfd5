"""Fabricated results.json documents, as `driftless run` writes them, for tests of what reads them
(compare, figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from driftless.report.results import RESULTS_SCHEMA, matrix_metrics, seen_unseen_curves


def fake_results(
    seed: int,
    matrices: dict[str, list[list[float]]],
    benchmark: str = "world-cil",
    protocol: str = "class-incremental",
    backbone: str = "tiny-clip",
    reference: dict | None = None,
) -> dict:
    """A results document as `driftless run` writes it, with the given (T+1)×T matrices."""
    T = len(next(iter(matrices.values()))[0])
    counts = [10] * T
    methods = {}
    for name, values in matrices.items():
        methods[name] = {
            "config": {"unseen": "text"},
            "metrics": matrix_metrics(protocol, values, counts),
            "curves": seen_unseen_curves(protocol, values, counts),
            "accuracy_matrix": {
                "rows": ["before training"] + [f"after task {t + 1}" for t in range(T)],
                "columns": [f"task {t + 1}" for t in range(T)],
                "values": values,
                "counts": counts,
                "cell_label_space": "",
            },
            "timings": {"learn_seconds": [0.1] * T, "eval_seconds": [0.1] * (T + 1), "total_seconds": 1.0},
        }  # fmt: skip
    return {
        "schema": RESULTS_SCHEMA,
        "benchmark": {"name": benchmark, "protocol": protocol, "tasks": [{"name": f"task {t + 1}"} for t in range(T)],
                      "columns": [f"task {t + 1}" for t in range(T)]},
        "backbone": {"name": backbone, "fingerprint": "x"},
        "seed": seed,
        "config": {"seed": seed, "reference": reference},
        "methods": methods,
    }  # fmt: skip


def matrix(rng: np.random.Generator, T: int = 3) -> list[list[float]]:
    return np.round(rng.uniform(20, 90, size=(T + 1, T)), 2).tolist()


def write_seed_tree(
    root: Path, seeds=(11, 12, 13), methods=("zero-shot", "ncm", "calfuse[calibration=off]")
) -> dict:
    """root/seed-N/results.json for each seed; returns {seed: results}."""
    rng = np.random.default_rng(0)
    written = {}
    for seed in seeds:
        results = fake_results(seed, {m: matrix(rng) for m in methods})
        (root / f"seed-{seed}").mkdir(parents=True)
        (root / f"seed-{seed}" / "results.json").write_text(json.dumps(results))
        written[seed] = results
    return written
