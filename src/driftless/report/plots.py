"""Plots of a results document: accuracy after each task for every method, and one heat-map of the
accuracy matrix per method. matplotlib with the non-interactive Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _curve(protocol: str, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per trained row: CIL → sample-weighted accuracy on seen blocks; MTIL → mean over datasets."""
    T = values.shape[1]
    if protocol == "class-incremental":
        return np.array(
            [np.dot(values[t, :t], counts[:t]) / counts[:t].sum() for t in range(1, T + 1)]
        )
    return np.nanmean(values[1:], axis=1)


def plot_curves(results: dict[str, Any], path: Path) -> None:
    """Accuracy after each task, one line per method, saved as PNG."""
    plt = _pyplot()
    protocol = results["benchmark"]["protocol"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for name, m in results["methods"].items():
        matrix = m["accuracy_matrix"]
        values = np.array(
            [[np.nan if v is None else v for v in row] for row in matrix["values"]], dtype=float
        )
        curve = _curve(protocol, values, np.asarray(matrix["counts"], dtype=float))
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
    ax.set_xticks(range(1, len(results["benchmark"]["tasks"]) + 1))
    ax.set_xlabel("tasks learned")
    ax.set_ylabel(
        "accuracy on seen classes (%)"
        if protocol == "class-incremental"
        else "mean accuracy over datasets (%)"
    )
    ax.set_title(results["benchmark"]["name"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_matrix(results: dict[str, Any], method: str, path: Path) -> None:
    """Heat-map of one method's accuracy matrix, saved as PNG."""
    plt = _pyplot()
    matrix = results["methods"][method]["accuracy_matrix"]
    values = np.array(
        [[np.nan if v is None else v for v in row] for row in matrix["values"]], dtype=float
    )
    fig, ax = plt.subplots(
        figsize=(1.0 + 0.6 * values.shape[1], 1.0 + 0.45 * values.shape[0]), dpi=120
    )
    image = ax.imshow(values, vmin=0, vmax=100, cmap="viridis")
    for (r, c), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(
                c,
                r,
                f"{v:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v < 60 else "black",
            )
    ax.set_xticks(range(values.shape[1]), matrix["columns"], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(values.shape[0]), matrix["rows"], fontsize=7)
    ax.set_title(f"{method}: accuracy (%)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
