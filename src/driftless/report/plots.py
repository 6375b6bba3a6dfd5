"""Plots of a results document: accuracy after each task for every method (learned and not yet
learned), and one heat-map of the accuracy matrix per method. matplotlib with the non-interactive
Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from driftless.report.results import saved_matrix, seen_unseen_curves


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _styles(count: int) -> list[dict[str, Any]]:
    """A distinct colour and marker for each of ``count`` lines (tab10's colours alone repeat
    after ten methods)."""
    plt = _pyplot()
    colours = plt.get_cmap("tab20").colors
    markers = "osD^vP*Xh<>p"
    return [
        {"color": colours[(2 * i) % 20 + (i // 10) % 2], "marker": markers[i % len(markers)]}
        for i in range(count)
    ]


def plot_curves(results: dict[str, Any], path: Path) -> None:
    """Accuracy after each task, one line per method, saved as PNG: on what has been learned so
    far and, when the run evaluated it, on what has not been learned yet (a second panel)."""
    plt = _pyplot()
    protocol = results["benchmark"]["protocol"]
    methods = results["methods"]
    all_curves = {  # from the matrices, so results.json files written before "curves" plot too
        name: seen_unseen_curves(
            protocol,
            m["accuracy_matrix"]["values"],
            m["accuracy_matrix"]["counts"],
            m["accuracy_matrix"].get("column_tasks"),
        )
        for name, m in methods.items()
    }
    unseen_known = any(v is not None for c in all_curves.values() for v in c["unseen"])
    panels = 2 if unseen_known else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.0), dpi=120, squeeze=False)
    what = {"multi-domain": "datasets", "domain-incremental": "domains"}.get(protocol, "classes")
    titles = [f"{what} learned so far", f"{what} not learned yet"]
    for name, style in zip(methods, _styles(len(methods)), strict=True):
        curves = all_curves[name]
        for ax, key in zip(axes[0], ("seen", "unseen"), strict=False):
            values = [np.nan if v is None else v for v in curves[key]]
            ax.plot(range(1, len(values) + 1), values, label=name, markersize=5, **style)
    tasks = len(results["benchmark"]["tasks"])
    for ax, title in zip(axes[0], titles, strict=False):
        ax.set_xticks(range(1, tasks + 1))
        ax.set_xlabel("tasks learned")
        ax.set_ylabel(f"accuracy on {title} (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2 if len(methods) > 8 else 1)
    fig.suptitle(results["benchmark"]["name"])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_matrix(results: dict[str, Any], method: str, path: Path) -> None:
    """Heat-map of one method's accuracy matrix, saved as PNG."""
    plt = _pyplot()
    matrix = results["methods"][method]["accuracy_matrix"]
    values = saved_matrix(matrix["values"])
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
