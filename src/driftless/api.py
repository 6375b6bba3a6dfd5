"""The Python API, for notebooks and scripts: build a configuration, run it, read the results.

    from driftless.api import make_config, run_experiment

    config = make_config(benchmark="toy-cil", backbone="tiny-random", methods=["zero-shot", "ncm"])
    results = run_experiment(config)          # in memory: no run directory, no bars
    results.metrics["ncm"]["last"]            # every metric of every method
    results.matrix("ncm")                     # the (T+1)×T accuracy matrix, row 0 before training
    results.save("runs/toy")                  # results.json, metrics.csv, figures: when asked

:func:`run_experiment` runs exactly what ``driftless run`` runs (same engine, same seeds, same
numbers). Without ``out`` it keeps nothing on disk but the shared feature cache (``cache_dir``): the
engine's checkpoints go to a temporary directory that is removed when the run ends, and no logger
writes unless ``loggers`` asks for one (then ``out`` is needed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftless.errors import ConfigError

if TYPE_CHECKING:
    from driftless.config import RunConfig
    from driftless.report.compare import Comparison


def make_config(
    data: Mapping[str, Any] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    **fields: Any,
) -> RunConfig:
    """A validated run configuration: a YAML ``file`` (optional), then ``data`` and keyword
    ``fields`` (any :class:`~driftless.config.RunConfig` field: ``benchmark``, ``methods``,
    ``backbone``, ``seed``, ``method_config`` …), then ``overrides`` (``"ncm.unseen=error"``, as
    ``--set``). Bad values raise :class:`~driftless.errors.ConfigError` naming the field."""
    from driftless.config import apply_overrides, build_run_config, load_yaml_config

    values: dict[str, Any] = load_yaml_config(file) if file is not None else {}
    values.update(data or {})
    values.update(fields)
    return build_run_config(apply_overrides(values, overrides))


@contextmanager
def quiet_progress(enabled: bool) -> Iterator[None]:
    """With ``enabled`` False, silence the progress bars of transformers and huggingface_hub
    (weight loading, downloads) for the block and restore their previous setting afterwards;
    driftless's own bars follow the engine's ``progress`` flag."""
    if enabled:
        yield
        return
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )
    from transformers.utils import logging as transformers_logging

    transformers_was_on = transformers_logging.is_progress_bar_enabled()
    hub_was_off = are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()
    disable_progress_bars()
    try:
        yield
    finally:
        if transformers_was_on:
            transformers_logging.enable_progress_bar()
        if not hub_was_off:
            enable_progress_bars()


class Results:
    """A finished run: the results document (what results.json holds) with accessors."""

    def __init__(self, document: dict[str, Any], out: Path | None = None):
        self.document = document
        self.out = out
        """The run directory when the run was written to disk, else None."""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Results:
        """A saved run: a results.json or its run directory."""
        from driftless.report.results import load_results

        path = Path(path)
        return cls(load_results(path), path if path.is_dir() else path.parent)

    @property
    def benchmark(self) -> str:
        """The benchmark's name."""
        return self.document["benchmark"]["name"]

    @property
    def protocol(self) -> str:
        """``class-incremental`` or ``multi-domain``."""
        return self.document["benchmark"]["protocol"]

    @property
    def seed(self) -> int:
        """The run's seed."""
        return int(self.document["seed"])

    @property
    def methods(self) -> list[str]:
        """The methods run, in order."""
        return list(self.document["methods"])

    @property
    def metrics(self) -> dict[str, dict[str, float | None]]:
        """Method → metric → value (percent; None where undefined), as results.json has them."""
        return {name: dict(m["metrics"]) for name, m in self.document["methods"].items()}

    def matrix(self, method: str) -> np.ndarray:
        """``method``'s (T+1)×T accuracy matrix (row 0 before training; NaN where not evaluated).
        :func:`driftless.metrics.summarize` accepts it as it is."""
        from driftless.report.results import saved_matrix

        if method not in self.document["methods"]:
            raise KeyError(f"no method {method!r} in these results; methods: {self.methods}")
        return saved_matrix(self.document["methods"][method]["accuracy_matrix"]["values"])

    @property
    def matrices(self) -> dict[str, np.ndarray]:
        """Method → its (T+1)×T accuracy matrix."""
        return {name: self.matrix(name) for name in self.methods}

    @property
    def counts(self) -> list[int]:
        """Test samples of each evaluation column (the weights of class-incremental acc_t)."""
        first = next(iter(self.document["methods"].values()))
        return list(first["accuracy_matrix"]["counts"])

    @property
    def columns(self) -> list[str]:
        """The evaluation columns' names (class blocks or datasets)."""
        return list(self.document["benchmark"]["columns"])

    def curves(self, method: str) -> dict[str, list[float | None]]:
        """``seen`` and ``unseen`` accuracy after each task (docs/metrics.md)."""
        return dict(self.document["methods"][method]["curves"])

    def training(self, method: str) -> dict[str, Any]:
        """The loss-curve summary of ``method`` (per logged value, per task: steps, first, last,
        mean); empty for closed-form methods."""
        return dict(self.document["methods"][method].get("training") or {})

    def table(self) -> str:
        """The comparison table ``driftless run`` prints (markdown)."""
        from driftless.report import comparison_table

        return comparison_table(self.metrics)

    def save(self, out: str | os.PathLike[str]) -> list[Path]:
        """Write results.json, metrics.csv and the figures into ``out``; returns the paths."""
        from driftless.report import write_report

        path = Path(out)
        written = write_report(self.document, path)
        self.out = path
        return written

    def __repr__(self) -> str:
        return f"Results({self.benchmark}, seed {self.seed}, methods {self.methods})"


def run_experiment(
    config: RunConfig | Mapping[str, Any],
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    loggers: Sequence[str] | None = None,
) -> Results:
    """Run ``config`` (a :class:`RunConfig`, or a mapping for :func:`make_config`) and return its
    :class:`Results`.

    ``out``: a run directory to write (config, checkpoints, results.json, metrics.csv, figures,
    logs), as ``driftless run --out``; None (the default) runs in memory. ``progress``: show
    progress bars (False silences every bar, transformers' included). ``loggers``: ``csv``,
    ``tensorboard``, ``wandb`` (default: csv with ``out``, none without)."""
    from driftless.engine import run
    from driftless.report import build_results, write_report

    if not hasattr(config, "model_copy"):
        config = make_config(config)
    chosen = list(loggers) if loggers is not None else (["csv"] if out is not None else [])
    if out is None and chosen:
        raise ConfigError(f"run_experiment: loggers {chosen} write files; pass out=DIR")
    if resume and out is None:
        raise ConfigError("run_experiment: resume=True needs the run directory: pass out=DIR")
    with quiet_progress(progress):
        if out is not None:
            run_config = config.model_copy(update={"out": Path(out), "loggers": chosen})
            outcome = run(run_config, resume=resume, progress=progress)
            results = Results(build_results(outcome), outcome.out)
            write_report(results.document, outcome.out)
            return results
        with tempfile.TemporaryDirectory(prefix="driftless-") as scratch:
            run_config = config.model_copy(update={"out": Path(scratch), "loggers": []})
            outcome = run(run_config, progress=progress)
            return Results(build_results(outcome))


def compare(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    baseline: str | None = None,
    reference: str | os.PathLike[str] | None = None,
) -> Comparison:
    """``driftless compare`` from Python: the results.json files at or under ``paths``, grouped by
    (benchmark, backbone, method), each metric's mean ± sample std and n over seeds, the paired
    differences against ``baseline`` and the published values of a ``reference`` configuration.
    ``.rows`` holds the numbers; ``.format("markdown" | "csv" | "latex" | "json")`` the text."""
    from driftless.report.compare import (
        compare_runs,
        find_results_files,
        load_reference,
        read_method_runs,
    )

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs = read_method_runs(find_results_files(paths))
    block = load_reference(reference) if reference is not None else None
    return compare_runs(runs, baseline=baseline, reference=block)
