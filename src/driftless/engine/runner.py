"""The task loop: for each method, evaluate the untrained model (row 0), then learn and evaluate
task after task, checkpointing after each; finally gather every method's results.

A run directory holds ``config.yaml`` (the resolved configuration), ``checkpoints/<method>.pt``
(state after the last finished task) and, once done, ``results.json`` and the report. ``resume``
continues each method from its checkpoint; because every task's randomness is derived from
(seed, method, task), the results equal those of an uninterrupted run. The directory is guarded by
:class:`~driftless.engine.rundir.RunDirectory`: an existing run is never clobbered without
``overwrite``, and ``config.yaml`` is written only after the configuration and its data validate.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from lightning.fabric import Fabric

from driftless.backbones.registry import load_backbone
from driftless.benchmarks.protocol import Benchmark
from driftless.benchmarks.registry import load_benchmark
from driftless.config import NON_SEMANTIC_FIELDS, RunConfig, label_file_stem, parse_method_label
from driftless.engine.checkpoint import load_checkpoint, save_checkpoint
from driftless.engine.distributed import (
    build_fabric,
    default_num_workers,
    extract_sharded,
    launched_as_rank_zero,
    tf32_matmuls,
    use_tf32,
)
from driftless.engine.evaluation import evaluate_row
from driftless.engine.inputs import FeatureTable, task_data
from driftless.engine.preflight import check_accelerator
from driftless.engine.progress import RunProgress, choose_progress
from driftless.engine.rundir import RunDirectory
from driftless.engine.seeding import derive_seed, seeded
from driftless.engine.threads import limited_threads
from driftless.engine.tracking import MethodTracker, check_logger_available, task_metrics
from driftless.errors import ResumeError
from driftless.features.store import FeatureStore
from driftless.methods.base import Context, LabelSpace, Method
from driftless.methods.parts.text_classifier import TextEmbeddingCache
from driftless.methods.registry import build_method, method_class


@dataclass
class MethodOutcome:
    """One method's accuracy matrix (row 0 = before training) and its timings. ``name`` is the
    method's label as run (``calfuse`` or a variant ``calfuse[fusion=none]``), ``method`` the
    registered method and ``overrides`` the config fields the label sets."""

    name: str
    config: dict[str, Any]
    matrix: np.ndarray
    learn_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    method: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    """Per value the method logged (``loss``, …): per task the steps, first, last and mean."""


@dataclass
class RunOutcome:
    """Everything a finished run produced, before it is written as a report."""

    config: RunConfig
    benchmark: Benchmark
    backbone_name: str
    backbone_fingerprint: str
    out: Path
    methods: dict[str, MethodOutcome]
    feature_seconds: float
    images_encoded: int
    is_global_zero: bool = True
    """False on the other ranks of a distributed run: they hold only the image methods' outcomes
    and write nothing."""


def default_out_dir(config: RunConfig, resume: bool) -> Path:
    """``runs/<benchmark>/<timestamp>``; with ``resume``, the latest run directory there."""
    return latest_run_dir(config.benchmark) if resume else new_run_dir(config.benchmark)


def new_run_dir(benchmark: str) -> Path:
    """``runs/<benchmark>/<timestamp>``."""
    base = Path("runs") / Path(benchmark).stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = base / stamp, 2
    while out.exists():  # two runs started in the same second: never share a directory
        out, n = base / f"{stamp}-{n}", n + 1
    return out


def latest_run_dir(benchmark: str) -> Path:
    """The latest run (or seed sweep) directory under ``runs/<benchmark>/``."""
    base = Path("runs") / Path(benchmark).stem
    candidates = sorted(
        p for p in base.glob("*") if (p / "config.yaml").is_file() or (p / SWEEP_FILE).is_file()
    )
    if not candidates:
        raise ResumeError(f"--resume: no run to resume under {base}/; pass --out DIR")
    return candidates[-1]


#: a seed sweep's directory holds this file (its seeds and configuration) and one run per seed
SWEEP_FILE = "sweep.yaml"


def saved_config(out: Path) -> dict[str, Any]:
    """The configuration a run directory was started with (its ``config.yaml``): every field that
    changes the results; where it lives and how it is shown are not saved."""
    saved_file = Path(out) / "config.yaml"
    if not saved_file.is_file():
        raise ResumeError(
            f"--resume: {out} holds no config.yaml; it is not a driftless run directory"
        )
    return yaml.safe_load(saved_file.read_text()) or {}


def semantic_config(config: RunConfig) -> dict[str, Any]:
    """The fields of ``config`` that change what a run computes, as saved in ``config.yaml``."""
    return _semantic_config(config)


def _semantic_config(config: RunConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude=set(NON_SEMANTIC_FIELDS))
    data["methods"] = config.resolved_methods()
    return data


def _check_resume_config(out: Path, config: RunConfig) -> None:
    check_same_config(saved_config(out), config, out)


def check_same_config(saved: dict[str, Any], config: RunConfig, out: Path) -> None:
    """ResumeError naming every field where ``config`` would compute something else than the
    ``saved`` configuration of the run in ``out``."""
    current = _semantic_config(config)
    # a field added after the run was saved matches when it has its default value
    defaults = RunConfig.model_construct().model_dump(mode="json")
    saved = {**{k: defaults[k] for k in current if k not in saved and k in defaults}, **saved}
    differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differing:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {current.get(k)!r}" for k in differing)
        raise ResumeError(f"--resume: the configuration differs from the run in {out} ({details})")


class Engine:
    """Runs one configuration. Build it, then call :meth:`run`."""

    def __init__(
        self,
        config: RunConfig,
        *,
        resume: bool = False,
        progress: bool | RunProgress = True,
        overwrite: bool = False,
    ):
        self.config = config
        self.resume = resume
        self.overwrite = overwrite
        # one bar per method on a terminal, plain lines otherwise
        self.reporter = choose_progress(progress)
        self.out = Path(config.out) if config.out else default_out_dir(config, resume)
        self.method_names = config.resolved_methods()

    def run(self) -> RunOutcome:
        """Run every method of the configuration and return the outcome."""
        with limited_threads(self.config.threads):
            return self._run()

    def _run(self) -> RunOutcome:
        check_accelerator(self.config.accelerator)
        if not launched_as_rank_zero():  # rank 0 guards the directory for every rank
            return self._run_in(None)
        with RunDirectory(self.out, resume=self.resume, overwrite=self.overwrite) as run_dir:
            return self._run_in(run_dir)

    def _run_in(self, run_dir: RunDirectory | None) -> RunOutcome:
        config = self.config
        for kind in config.loggers:  # a missing optional package fails before any work
            check_logger_available(kind)
        fabric = build_fabric(
            config.accelerator, config.devices, config.num_nodes, config.strategy, config.precision
        )
        fabric.launch()  # with several processes: starts the other ranks, or joins them
        self.fabric = fabric
        if fabric.world_size > 1:  # every rank writes to, and resumes from, rank 0's directory
            self.out = Path(fabric.broadcast(str(self.out), src=0))
            if not fabric.is_global_zero:
                self.reporter = choose_progress(False)
        if self.resume:
            _check_resume_config(self.out, config)
        self.num_workers = (
            config.num_workers
            if config.num_workers is not None
            else default_num_workers(fabric.device.type, config.devices, os.cpu_count())
        )
        with tf32_matmuls(use_tf32(config.precision, fabric.device)):
            return self._run_on(fabric, run_dir)

    def _run_on(self, fabric: Fabric, run_dir: RunDirectory | None) -> RunOutcome:
        config = self.config
        benchmark = load_benchmark(config.benchmark, config.data_root, run_seed=config.seed)
        backbone = load_backbone(config.backbone, allow_download=config.download).to(fabric.device)
        backbone.set_precision(config.precision)
        for label in self.method_names:  # every method's settings, before the run is recorded
            name, values = config.method_values(label)
            build_method(name, {**benchmark.method_defaults.get(name, {}), **values})
        if run_dir is not None:
            run_dir.write_config(_semantic_config(config))
        texts = TextEmbeddingCache(backbone, batch_size=config.batch_size)
        texts(LabelSpace.of(benchmark, range(len(benchmark.classes))))  # fixed encoding order
        started = time.perf_counter()
        store = FeatureStore(
            config.cache_dir / "features",
            batch_size=config.batch_size,
            num_workers=self.num_workers,
            progress=self.reporter.shows_bars,
        )
        features = None
        if any(
            method_class(parse_method_label(m).name).inputs == "features" for m in self.method_names
        ):
            features = self._extract_features(benchmark, backbone, store)
        feature_seconds = time.perf_counter() - started
        outcomes = {}
        for label in self.method_names:
            inputs = method_class(parse_method_label(label).name).inputs
            if inputs == "features" and not fabric.is_global_zero:
                continue  # feature methods run once, on rank 0
            outcomes[label] = self._run_method(label, benchmark, backbone, fabric, texts, features)
        fabric.barrier()  # no rank leaves (and tears down the process group) before the others
        return RunOutcome(
            config,
            benchmark,
            backbone.name,
            backbone.fingerprint,
            self.out,
            outcomes,
            feature_seconds,
            store.stats.images_encoded,
            fabric.is_global_zero,
        )

    def _extract_features(
        self, benchmark: Benchmark, backbone, store: FeatureStore
    ) -> FeatureTable:
        used = sorted(
            {(s.dataset, s.split) for t in benchmark.tasks for s in t.train}
            | {(e.samples.dataset, e.samples.split) for e in benchmark.eval_splits}
        )
        arrays = {}
        for dataset, split in used:
            encoded, tick = store.stats.images_encoded, time.perf_counter()
            images, description = benchmark.datasets[dataset].split(split), f"{dataset}/{split}"
            if self.fabric.world_size > 1:
                arrays[(dataset, split)] = extract_sharded(
                    self.fabric, store, backbone, images, description
                )
            else:
                arrays[(dataset, split)] = store.get(backbone, images, description=description)
            if store.stats.images_encoded > encoded:
                self.reporter.features_extracted(
                    description, store.stats.images_encoded - encoded, time.perf_counter() - tick
                )
        return FeatureTable(arrays)

    def _run_method(
        self,
        label: str,
        benchmark: Benchmark,
        backbone,
        fabric: Fabric,
        texts: TextEmbeddingCache,
        features: FeatureTable | None,
    ) -> MethodOutcome:
        # a variant (calfuse[fusion=none]) draws the same random numbers as its method, seeded by
        # the method's name: an ablation then differs from the method only by its overrides
        config = self.config
        name, values = config.method_values(label)
        method_values = {**benchmark.method_defaults.get(name, {}), **values}
        method: Method = build_method(name, method_values)
        method_config = method.config.model_dump(mode="json")  # type: ignore[attr-defined]
        overrides = {f: method_config[f] for f, _ in parse_method_label(label).overrides}
        T = benchmark.num_tasks
        checkpoint_path = self.out / "checkpoints" / f"{label_file_stem(label)}.pt"
        state = load_checkpoint(checkpoint_path) if self.resume else None
        tracker = MethodTracker.open(
            label_file_stem(label),
            config.loggers if fabric.is_global_zero else [],
            self.out,
            state.get("tracking") if state is not None else None,
            int(state["tasks_done"]) if state is not None else 0,
        )
        counts = [len(e.samples.indices) for e in benchmark.eval_splits]
        weights = counts if benchmark.protocol == "class-incremental" else None
        columns = [e.name for e in benchmark.eval_splits]

        def context(generator: torch.Generator) -> Context:
            """The method's context for one task."""
            # no bars of the method's own: they would nest inside the method's bar
            return Context(
                backbone,
                fabric,
                generator,
                texts,
                config.batch_size,
                progress=False,
                tracker=tracker,
            )

        def evaluate(outcome: MethodOutcome, tasks_done: int) -> None:
            """Row ``tasks_done`` of the matrix, reported to the tracker and checkpointed."""
            with seeded(derive_seed(config.seed, name, "eval", tasks_done)) as generator:
                tick = time.perf_counter()
                outcome.matrix[tasks_done] = evaluate_row(
                    method,
                    benchmark,
                    tasks_done,
                    context(generator),
                    features,
                    config.eval_future,
                    self.num_workers,
                    fabric=self._eval_fabric(method),
                    label=label,
                )
                outcome.eval_seconds.append(time.perf_counter() - tick)
            row = outcome.matrix[tasks_done]
            tracker.end_task(tasks_done, task_metrics(row, tasks_done, columns, weights))
            self._save(checkpoint_path, method, outcome, tasks_done, tracker)

        if state is not None:
            method.load_state_dict(state["method_state"])
            outcome = MethodOutcome(
                label,
                method_config,
                np.array(state["matrix"], dtype=np.float64),
                list(state["learn_seconds"]),
                list(state["eval_seconds"]),
                name,
                overrides,
            )
            tasks_done = int(state["tasks_done"])
        else:
            outcome = MethodOutcome(
                label,
                method_config,
                np.full((T + 1, len(benchmark.eval_splits)), np.nan),
                method=name,
                overrides=overrides,
            )
            tasks_done = 0
            evaluate(outcome, 0)
        self.reporter.method_started(label, T, tasks_done)
        for t in range(tasks_done, T):
            with seeded(derive_seed(config.seed, name, "learn", t)) as generator:
                ctx = context(generator)
                data = task_data(benchmark, t, method.inputs, features, backbone.preprocess)
                tick = time.perf_counter()
                method.learn(data, ctx)
                outcome.learn_seconds.append(time.perf_counter() - tick)
            evaluate(outcome, t + 1)
            learned = outcome.matrix[t + 1][: t + 1]
            self.reporter.task_finished(
                label,
                t + 1,
                T,
                float(np.average(learned, weights=weights[: t + 1] if weights else None)),
                outcome.learn_seconds[-1] + outcome.eval_seconds[-1],
            )
        self.reporter.method_finished(label)
        tracker.close()
        outcome.training = tracker.loss_summary(T)
        return outcome

    def _eval_fabric(self, method: Method) -> Fabric | None:
        """The Fabric to shard an evaluation over: image methods' when there are several ranks."""
        if method.inputs == "images" and self.fabric.world_size > 1:
            return self.fabric
        return None

    def _save(
        self,
        path: Path,
        method: Method,
        outcome: MethodOutcome,
        tasks_done: int,
        tracker: MethodTracker,
    ) -> None:
        if not self.fabric.is_global_zero:
            return  # rank 0 writes the checkpoints
        save_checkpoint(
            path,
            {
                "method": outcome.name,
                "tasks_done": tasks_done,
                "method_state": method.state_dict(),
                "matrix": outcome.matrix.tolist(),
                "learn_seconds": outcome.learn_seconds,
                "eval_seconds": outcome.eval_seconds,
                # older checkpoints also hold a "torch_rng_state"; loading ignores it, as every
                # task's generator is derived from the run seed (engine/seeding.py)
                "tracking": tracker.state_dict(),
            },
        )


def run(
    config: RunConfig,
    *,
    resume: bool = False,
    progress: bool | RunProgress = True,
    overwrite: bool = False,
) -> RunOutcome:
    """Run ``config`` and return its outcome (call :func:`driftless.report.write_report` to save
    it). ``progress``: True shows one bar per method on a terminal and plain lines per finished task
    otherwise (:mod:`driftless.engine.progress`); False shows nothing. Without ``resume``, a
    directory that already holds a run is refused unless ``overwrite``."""
    return Engine(config, resume=resume, progress=progress, overwrite=overwrite).run()
