"""Figures of one run or of several seeds: accuracy after each task for every method (learned and
not yet learned), per dataset for multi-domain benchmarks, and one heat-map of the accuracy matrix
per method. Each figure is saved as PNG, PDF and SVG (fonts embedded as TrueType in the PDF, text
kept as text in the SVG); titles carry the benchmark, the backbone and the seed(s). Over several
seeds a line is the mean and its band ± the sample standard deviation. matplotlib with the
non-interactive Agg backend, imported only when a figure is drawn."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftless.config import label_file_stem
from driftless.report.results import saved_matrix, seen_unseen_curves

FIGURE_FORMATS = ("png", "pdf", "svg")
MIN_PANEL_SPAN = 10.0
"""Per-dataset panels show at least this many accuracy points on their y axis."""


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


def check_formats(formats: Sequence[str]) -> list[str]:
    """``formats`` as a list, each one of :data:`FIGURE_FORMATS` (ConfigError otherwise)."""
    from driftless.errors import ConfigError

    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"figure formats {list(formats)}: choose among {', '.join(FIGURE_FORMATS)}"
        )
    return list(dict.fromkeys(formats))


def save_figure(fig: Any, path: Path, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Save ``fig`` as ``path`` with each of ``formats`` as suffix; returns the paths."""
    plt = _pyplot()
    written = []
    with plt.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none"}):
        for fmt in check_formats(formats):
            target = path.with_suffix(f".{fmt}")
            fig.savefig(target)
            written.append(target)
    plt.close(fig)
    return written


def unseen_zero_by_design(protocol: str, method_config: dict[str, Any]) -> bool:
    """Whether a method scores not-yet-learned classes 0 by construction: a class-incremental
    head that ranks every untrained class below the trained ones (``mixing = trained-first``,
    docs/methods/lda.md) never predicts a future block's class over the full label space."""
    return protocol == "class-incremental" and method_config.get("mixing") == "trained-first"


def _seed_text(seeds: Sequence[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {', '.join(str(s) for s in sorted(seeds))} (mean ± std)"


def _title(runs: Sequence[dict[str, Any]]) -> str:
    first = runs[0]
    seeds = sorted({int(r["seed"]) for r in runs})
    return (
        f"{first['benchmark']['name']} · backbone {first['backbone']['name']} · {_seed_text(seeds)}"
    )


def _mean_std(stack: list[list[float]]) -> tuple[np.ndarray, np.ndarray | None]:
    """Per position: the mean over runs and the sample std (None for a single run); NaN where no
    run has a value."""
    values = np.array(stack, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN positions: NaN is the answer
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else None
    return mean, std


def _method_names(runs: Sequence[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for r in runs:
        names.update(dict.fromkeys(r["methods"]))
    return list(names)


def _line(ax: Any, x: Sequence[float], mean: np.ndarray, std: np.ndarray | None, **style: Any):
    ax.plot(x, mean, markersize=5, **style)
    if std is not None:
        ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.18, linewidth=0)


def _label(name: str, protocol: str, runs: Sequence[dict[str, Any]], unseen_panel: bool) -> str:
    configs = [r["methods"][name].get("config") or {} for r in runs if name in r["methods"]]
    if unseen_panel and configs and unseen_zero_by_design(protocol, configs[0]):
        return f"{name} (unseen: 0 by design)"
    return name


def draw_curves(
    runs: Sequence[dict[str, Any]], path: Path, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """Accuracy after each task, one line per method (mean ± std band over ``runs``, the results
    of one benchmark with one or several seeds): on what has been learned so far and, when the
    runs evaluated it, on what has not been learned yet. Saved as PNG, PDF and SVG."""
    plt = _pyplot()
    protocol = runs[0]["benchmark"]["protocol"]
    methods = _method_names(runs)
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for name in methods:
        per_seed = [
            seen_unseen_curves(
                protocol,
                r["methods"][name]["accuracy_matrix"]["values"],
                r["methods"][name]["accuracy_matrix"]["counts"],
                r["methods"][name]["accuracy_matrix"].get("column_tasks"),
            )
            for r in runs
            if name in r["methods"]
        ]
        curves[name] = {
            key: [[np.nan if v is None else v for v in c[key]] for c in per_seed]
            for key in ("seen", "unseen")
        }
    unseen_known = any(not np.isnan(v) for c in curves.values() for row in c["unseen"] for v in row)
    panels = 2 if unseen_known else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.2), dpi=120, squeeze=False)
    what = {"multi-domain": "datasets", "domain-incremental": "domains"}.get(protocol, "classes")
    titles = [f"{what} learned so far", f"{what} not learned yet"]
    for name, style in zip(methods, _styles(len(methods)), strict=True):
        label = _label(name, protocol, runs, unseen_known)
        for ax, key in zip(axes[0], ("seen", "unseen"), strict=False):
            mean, std = _mean_std(curves[name][key])
            _line(ax, range(1, len(mean) + 1), mean, std, label=label, **style)
    tasks = len(runs[0]["benchmark"]["tasks"])
    for ax, title in zip(axes[0], titles, strict=False):
        ax.set_xticks(range(1, tasks + 1))
        ax.set_xlabel("tasks learned")
        ax.set_ylabel(f"accuracy on {title} (%)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2 if len(methods) > 8 else 1)
    fig.suptitle(_title(runs), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, formats)


def draw_datasets(
    runs: Sequence[dict[str, Any]], path: Path, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """Multi-domain benchmarks: one panel per dataset, its accuracy before training and after
    each task, one line per method (mean ± std band over ``runs``); the task that learns the
    dataset is marked, so each dataset is read against its own level rather than averaged with
    datasets of another difficulty. Saved as PNG, PDF and SVG."""
    plt = _pyplot()
    methods = _method_names(runs)
    columns = runs[0]["benchmark"]["columns"]
    T = len(runs[0]["benchmark"]["tasks"])
    cols = min(4, len(columns))
    rows = -(-len(columns) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.6), dpi=120, squeeze=False
    )
    styles = _styles(len(methods))
    for j, column in enumerate(columns):
        ax = axes[j // cols][j % cols]
        for name, style in zip(methods, styles, strict=True):
            stack = [
                saved_matrix(r["methods"][name]["accuracy_matrix"]["values"])[:, j].tolist()
                for r in runs
                if name in r["methods"]
            ]
            mean, std = _mean_std(stack)
            _line(ax, range(T + 1), mean, std, label=name, **{**style, "marker": None})
        low, high = ax.get_ylim()  # each dataset on its own level, but a 1-point wobble stays small
        if high - low < MIN_PANEL_SPAN:
            middle = min(max((low + high) / 2, MIN_PANEL_SPAN / 2), 100 - MIN_PANEL_SPAN / 2)
            ax.set_ylim(middle - MIN_PANEL_SPAN / 2, middle + MIN_PANEL_SPAN / 2)
        ax.axvline(j + 1, color="0.4", linestyle="--", linewidth=0.8)  # this dataset's task
        ax.axvspan(-0.2, j + 1, color="0.9", zorder=0)  # not learned yet
        ax.set_title(column, fontsize=9)
        ax.set_xticks(range(T + 1))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if j % cols == 0:
            ax.set_ylabel("accuracy (%)", fontsize=8)
        if j + cols >= len(columns):  # nothing below this panel
            ax.set_xlabel("tasks learned", fontsize=8)
    spare = [axes[k // cols][k % cols] for k in range(len(columns), rows * cols)]
    for ax in spare:
        ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(
        f"{_title(runs)}\nper dataset (shaded: before the dataset's task, dashed: its task)",
        fontsize=9,
    )
    if spare:  # the legend in the first empty slot of the grid
        spare[0].legend(handles, labels, loc="center", fontsize=7, ncol=1 + len(methods) // 10)
        fig.tight_layout()
    else:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(methods), 6), fontsize=7)
        fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(methods) // 6), 1, 1))
    return save_figure(fig, path, formats)


def plot_curves(
    results: dict[str, Any], path: Path, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """One run's accuracy after each task (:func:`draw_curves`); ``path``'s suffix is replaced
    by each of PNG, PDF and SVG."""
    return draw_curves([results], path, formats)


def plot_matrix(
    results: dict[str, Any], method: str, path: Path, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """Heat-map of one method's accuracy matrix, saved as PNG, PDF and SVG."""
    plt = _pyplot()
    matrix = results["methods"][method]["accuracy_matrix"]
    values = saved_matrix(matrix["values"])
    fig, ax = plt.subplots(
        figsize=(1.6 + 0.6 * values.shape[1], 1.4 + 0.45 * values.shape[0]), dpi=120
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
    ax.set_title(f"{method}: accuracy (%)\n{_title([results])}", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, path, formats)


def plot_run(
    results: dict[str, Any], out: Path, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """Every figure of one run into ``out``: curves, per-dataset panels (multi-domain) and one
    matrix heat-map per method, each as PNG, PDF and SVG."""
    out.mkdir(parents=True, exist_ok=True)
    written = plot_curves(results, out / "curves.png", formats)
    if results["benchmark"]["protocol"] == "multi-domain":
        written += draw_datasets([results], out / "datasets.png", formats)
    for method in results["methods"]:
        path = out / f"matrix-{label_file_stem(method)}.png"
        written += plot_matrix(results, method, path, formats)
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def plot_seed_curves(
    files: Iterable[str | Path], out: str | Path, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """Over several results.json (seeds of the same configuration): per (benchmark, backbone),
    mean curves with a ± std band, ``curves-<benchmark>.*``, and for multi-domain benchmarks the
    per-dataset panels, ``datasets-<benchmark>.*``; returns the paths written."""
    from driftless.report.results import load_results

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for file in files:
        results = load_results(file)
        key = (results["benchmark"]["name"], results["backbone"]["name"])
        groups.setdefault(key, []).append(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    several_backbones = len({b for _, b in groups}) > 1
    written: list[Path] = []
    for (bench, backbone), runs in groups.items():
        stem = _safe(bench + (f"-{backbone.replace('/', '_')}" if several_backbones else ""))
        written += draw_curves(runs, out / f"curves-{stem}.png", formats)
        if runs[0]["benchmark"]["protocol"] == "multi-domain":
            written += draw_datasets(runs, out / f"datasets-{stem}.png", formats)
    return written
