"""Training curves and per-task metrics, through Lightning's loggers.

A method reports its per-step values with ``ctx.log_metrics({"loss": loss})`` (once per optimizer
step); it never sees a logger. The engine gives each method a :class:`MethodTracker` that buffers
those values (tensors stay on the device: no synchronisation per step), and at the end of each task
writes them to the run's loggers under ``train/<key>`` at the method's cumulative step, together with
the task's accuracies under ``task/<key>`` at the task number (0 = before training). The tracker
also keeps the loss-curve summary that ``results.json`` carries (first, last and mean value and the
step count per task) and its own state, so a resumed run continues the same curves.

Loggers, one per method: ``csv`` (Lightning's ``CSVLogger``, no extra package) writes
``<run>/logs/csv/<method>/metrics.csv``; ``tensorboard`` (needs ``tensorboard`` or ``tensorboardX``)
``<run>/logs/tensorboard/<method>/``, one TensorBoard run per method; ``wandb`` (needs ``wandb``) one
W&B run per method in project ``driftless``, grouped by the run directory's name, files under
``<run>/logs/wandb/``. Optional packages are imported only when their logger is asked for.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from driftless.errors import ConfigError

LOGGERS = ("csv", "tensorboard", "wandb")

_EXTRAS = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard"),
    "wandb": (("wandb",), "pip install wandb"),
}


def check_logger_available(name: str) -> None:
    """Raise :class:`ConfigError` naming the package to install when ``name`` needs one that is
    missing."""
    if name not in LOGGERS:
        raise ConfigError(f"logger {name!r}: expected one of {', '.join(LOGGERS)}")
    packages, install = _EXTRAS.get(name, ((), ""))
    if packages and not any(importlib.util.find_spec(p) is not None for p in packages):
        raise ConfigError(
            f"--logger {name}: the {packages[0]} package is not installed; {install} "
            f"(or `pip install 'driftless[{name}]'`), or choose --logger csv"
        )


def make_logger(name: str, out: Path, method: str) -> Any:
    """A Lightning logger of kind ``name`` for ``method``, writing under ``<out>/logs/<name>/``."""
    check_logger_available(name)
    root = str(out / "logs" / name)
    if name == "csv":
        from lightning.fabric.loggers import CSVLogger

        # flushed by the tracker at the end of each task, not every n steps
        return CSVLogger(root, name=method, version="", flush_logs_every_n_steps=10**12)
    if name == "tensorboard":
        from lightning.fabric.loggers import TensorBoardLogger

        return TensorBoardLogger(root, name=method, version="", default_hp_metric=False)
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(name=method, group=out.name, project="driftless", save_dir=root)


def _finite(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (a diverged loss: results.json is JSON)."""
    return value if math.isfinite(value) else None


def csv_log_path(out: Path, method: str) -> Path:
    """Where the csv logger writes ``method``'s values in run directory ``out``."""
    return out / "logs" / "csv" / method / "metrics.csv"


def _previous_csv_rows(path: Path, steps_done: int, tasks_done: int) -> list[dict[str, float]]:
    """The rows of an interrupted run's metrics.csv that its checkpoint covers (train rows before
    ``steps_done``, task rows up to ``tasks_done``); Lightning's CSVLogger would delete the file."""
    if not path.is_file():
        return []
    kept = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            values = {k: float(v) for k, v in row.items() if k != "step" and v not in ("", None)}
            step = int(float(row["step"]))
            is_train = any(k.startswith("train/") for k in values)
            if (is_train and step < steps_done) or (not is_train and step <= tasks_done):
                kept.append({**values, "step": step})
    return kept


def task_metrics(
    row: Sequence[float],
    tasks_done: int,
    columns: Sequence[str],
    weights: Sequence[float] | None = None,
) -> dict[str, float | None]:
    """A matrix row's values for the loggers: ``seen`` (the blocks or datasets learned so far,
    weighted by ``weights`` when given, as acc_t), ``unseen`` (the plain mean over the others,
    when all were evaluated) and every column's accuracy by name. NaN cells are left out."""
    values = [float(v) for v in row]
    out: dict[str, float | None] = {}
    if tasks_done > 0:
        w = list(weights) if weights is not None else [1.0] * len(values)
        seen = values[:tasks_done]
        if not any(math.isnan(v) for v in seen):
            out["seen"] = sum(v * x for v, x in zip(seen, w, strict=False)) / sum(w[:tasks_done])
    future = values[tasks_done:]
    if future and not any(math.isnan(v) for v in future):
        out["unseen"] = sum(future) / len(future)
    for name, value in zip(columns, values, strict=True):
        if not math.isnan(value):
            out[f"acc/{name}"] = value
    return out


class MethodTracker:
    """One method's training values and task metrics: buffered per task, written to the loggers,
    summarized for results.json. ``state_dict`` / ``load_state_dict`` carry it across a resume."""

    def __init__(self, method: str, loggers: Sequence[Any] = ()):
        self.method = method
        self.loggers = list(loggers)
        self.step = 0  # optimizer steps logged so far, over all tasks
        self.summary: dict[str, dict[str, list[Any]]] = {}
        self._buffer: list[tuple[int, Mapping[str, Any]]] = []

    @classmethod
    def open(
        cls,
        method: str,
        kinds: Sequence[str],
        out: Path,
        state: Mapping[str, Any] | None = None,
        tasks_done: int = 0,
    ) -> MethodTracker:
        """A tracker writing to loggers of ``kinds``; from a checkpoint's ``state`` when resuming
        (the CSV history the checkpoint covers is kept, later rows dropped)."""
        previous: list[dict[str, float]] = []
        if state is not None and "csv" in kinds:
            path = csv_log_path(out, method)
            previous = _previous_csv_rows(path, int(state["step"]), tasks_done)
            path.unlink(missing_ok=True)  # rewritten below from the rows kept
        tracker = cls(method, [make_logger(kind, out, method) for kind in kinds])
        if state is not None:
            tracker.load_state_dict(state)
        for logger in tracker.loggers:
            if type(logger).__name__ == "CSVLogger":
                for row in previous:
                    values = {k: v for k, v in row.items() if k != "step"}
                    logger.log_metrics(values, step=int(row["step"]))
        return tracker

    def log(self, values: Mapping[str, Any]) -> None:
        """Record one optimizer step's values (floats or 0-d tensors, e.g. the loss)."""
        self._buffer.append((self.step, dict(values)))
        self.step += 1

    def end_task(self, task: int, metrics: Mapping[str, float | None]) -> None:
        """After task ``task`` (1-based; 0 = the evaluation before training): write the buffered
        steps and the task's ``metrics`` to the loggers and add the task to the summary."""
        import torch

        per_key: dict[str, list[float]] = {}
        rows = []
        if self._buffer:
            keys = sorted({k for _, values in self._buffer for k in values})
            for key in keys:
                column = [v[key] for _, v in self._buffer if key in v]
                if all(isinstance(x, torch.Tensor) for x in column):
                    # stacked where they live, then one transfer per key and task
                    stacked = torch.stack([x.detach().reshape(()) for x in column])
                    per_key[key] = stacked.double().cpu().tolist()
                else:
                    per_key[key] = [float(x) for x in column]
            positions = {k: 0 for k in keys}
            for step, values in self._buffer:
                row = {}
                for key in values:
                    row[f"train/{key}"] = per_key[key][positions[key]]
                    positions[key] += 1
                rows.append((step, row))
        if task > 0:
            for key, series in per_key.items():
                entry = self.summary.setdefault(
                    key, {"steps": [], "first": [], "last": [], "mean": []}
                )
                while len(entry["steps"]) < task - 1:  # tasks in which this key was not logged
                    for name in ("first", "last", "mean"):
                        entry[name].append(None)
                    entry["steps"].append(0)
                entry["steps"].append(len(series))
                entry["first"].append(_finite(series[0]))
                entry["last"].append(_finite(series[-1]))
                entry["mean"].append(_finite(sum(series) / len(series)))
        task_row = {f"task/{k}": float(v) for k, v in metrics.items() if v is not None}
        for logger in self.loggers:
            for step, row in rows:
                logger.log_metrics(row, step=step)
            if task_row:
                logger.log_metrics(task_row, step=task)
            logger.save()
        self._buffer = []

    def loss_summary(self, tasks: int) -> dict[str, dict[str, list[Any]]]:
        """Per logged key, per task: ``steps``, and the ``first``, ``last`` and ``mean`` value
        (None where the key was not logged in that task)."""
        summary = {}
        for key, entry in self.summary.items():
            padded = {name: list(values) for name, values in entry.items()}
            while len(padded["steps"]) < tasks:
                padded["steps"].append(0)
                for name in ("first", "last", "mean"):
                    padded[name].append(None)
            summary[key] = padded
        return summary

    def close(self) -> None:
        """Finish every logger (a W&B run is closed so the next method starts its own)."""
        for logger in self.loggers:
            logger.finalize("success")
            if type(logger).__name__ == "WandbLogger":
                logger.experiment.finish()

    def state_dict(self) -> dict[str, Any]:
        """The step count and summary so far (plain values)."""
        return {"step": self.step, "summary": self.summary}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        self.step = int(state["step"])
        self.summary = {k: {n: list(v) for n, v in e.items()} for k, e in state["summary"].items()}
