"""The task loop: for each method, evaluate the untrained model (row 0), then learn and evaluate
task after task, checkpointing after each; finally gather every method's results.

A run directory holds ``config.yaml`` (the resolved configuration), ``checkpoints/<method>.pt``
(state after the last finished task) and, once done, ``results.json`` and the report. ``resume``
continues each method from its checkpoint; because every task's randomness is derived from
(seed, method, task), the results equal those of an uninterrupted run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from lightning.fabric import Fabric
from tqdm.auto import tqdm

from driftless.backbones.registry import load_backbone
from driftless.benchmarks.protocol import Benchmark
from driftless.benchmarks.registry import load_benchmark
from driftless.config import RunConfig
from driftless.engine.checkpoint import load_checkpoint, save_checkpoint
from driftless.engine.evaluation import evaluate_row
from driftless.engine.inputs import FeatureTable, task_data
from driftless.engine.seeding import derive_seed, seeded
from driftless.engine.tracking import MethodTracker, check_logger_available, task_metrics
from driftless.errors import ResumeError
from driftless.features.store import FeatureStore
from driftless.methods.base import Context, LabelSpace, Method
from driftless.methods.parts.text_classifier import TextEmbeddingCache
from driftless.methods.registry import build_method, method_class

# fields that say where a run lives or how it is shown, not what it computes
_NON_SEMANTIC_FIELDS = {
    "out", "data_root", "cache_dir", "num_workers", "threads", "download", "reference",
    "loggers",
}  # fmt: skip


@dataclass
class MethodOutcome:
    """One method's accuracy matrix (row 0 = before training) and its timings."""

    name: str
    config: dict[str, Any]
    matrix: np.ndarray
    learn_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
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


def default_out_dir(config: RunConfig, resume: bool) -> Path:
    """``runs/<benchmark>/<timestamp>``; with ``resume``, the latest run directory there."""
    base = Path("runs") / Path(config.benchmark).stem
    if resume:
        candidates = sorted(p for p in base.glob("*") if (p / "config.yaml").is_file())
        if not candidates:
            raise ResumeError(f"--resume: no run to resume under {base}/; pass --out DIR")
        return candidates[-1]
    return base / datetime.now().strftime("%Y%m%d-%H%M%S")


def _semantic_config(config: RunConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude=_NON_SEMANTIC_FIELDS)
    data["methods"] = config.resolved_methods()
    return data


def _check_resume_config(out: Path, config: RunConfig) -> None:
    saved_file = out / "config.yaml"
    if not saved_file.is_file():
        raise ResumeError(
            f"--resume: {out} holds no config.yaml; it is not a driftless run directory"
        )
    saved = yaml.safe_load(saved_file.read_text()) or {}
    current = _semantic_config(config)
    differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differing:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {current.get(k)!r}" for k in differing)
        raise ResumeError(f"--resume: the configuration differs from the run in {out} ({details})")


class Engine:
    """Runs one configuration. Build it, then call :meth:`run`."""

    def __init__(self, config: RunConfig, *, resume: bool = False, progress: bool = True):
        self.config = config
        self.resume = resume
        self.progress = progress
        self.out = Path(config.out) if config.out else default_out_dir(config, resume)
        self.method_names = config.resolved_methods()

    def run(self) -> RunOutcome:
        """Run every method of the configuration and return the outcome."""
        if self.config.threads is None:
            return self._run()
        threads = torch.get_num_threads()
        torch.set_num_threads(self.config.threads)
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> RunOutcome:
        config = self.config
        for kind in config.loggers:  # a missing optional package fails before any work
            check_logger_available(kind)
        if self.resume:
            _check_resume_config(self.out, config)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(
                yaml.safe_dump(_semantic_config(config), sort_keys=True)
            )
        fabric = Fabric(accelerator=config.accelerator, devices=1, precision="32-true")
        benchmark = load_benchmark(config.benchmark, config.data_root)
        backbone = load_backbone(config.backbone, allow_download=config.download).to(fabric.device)
        texts = TextEmbeddingCache(backbone, batch_size=config.batch_size)
        texts(LabelSpace.of(benchmark, range(len(benchmark.classes))))  # fixed encoding order
        started = time.perf_counter()
        store = FeatureStore(
            config.cache_dir / "features",
            batch_size=config.batch_size,
            num_workers=config.num_workers,
            progress=self.progress,
        )
        features = None
        if any(method_class(m).inputs == "features" for m in self.method_names):
            features = self._extract_features(benchmark, backbone, store)
        feature_seconds = time.perf_counter() - started
        outcomes = {}
        for name in self.method_names:
            outcomes[name] = self._run_method(name, benchmark, backbone, fabric, texts, features)
        return RunOutcome(
            config,
            benchmark,
            backbone.name,
            backbone.fingerprint,
            self.out,
            outcomes,
            feature_seconds,
            store.stats.images_encoded,
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
            arrays[(dataset, split)] = store.get(
                backbone, benchmark.datasets[dataset].split(split), description=f"{dataset}/{split}"
            )
        return FeatureTable(arrays)

    def _run_method(
        self,
        name: str,
        benchmark: Benchmark,
        backbone,
        fabric: Fabric,
        texts: TextEmbeddingCache,
        features: FeatureTable | None,
    ) -> MethodOutcome:
        config = self.config
        method_values = {
            **benchmark.method_defaults.get(name, {}),
            **config.method_config.get(name, {}),
        }
        method: Method = build_method(name, method_values)
        method_config = method.config.model_dump(mode="json")  # type: ignore[attr-defined]
        T = benchmark.num_tasks
        checkpoint_path = self.out / "checkpoints" / f"{name}.pt"
        state = load_checkpoint(checkpoint_path) if self.resume else None
        tracker = MethodTracker.open(
            name,
            config.loggers,
            self.out,
            state.get("tracking") if state is not None else None,
            int(state["tasks_done"]) if state is not None else 0,
        )
        counts = [len(e.samples.indices) for e in benchmark.eval_splits]
        weights = counts if benchmark.protocol == "class-incremental" else None
        columns = [e.name for e in benchmark.eval_splits]

        def context(task_index: int, generator: torch.Generator) -> Context:
            """The method's context for one task."""
            return Context(
                backbone,
                fabric,
                generator,
                texts,
                config.batch_size,
                self.progress,
                tracker=tracker,
            )

        if state is not None:
            method.load_state_dict(state["method_state"])
            outcome = MethodOutcome(
                name,
                method_config,
                np.array(state["matrix"], dtype=np.float64),
                list(state["learn_seconds"]),
                list(state["eval_seconds"]),
            )
            tasks_done = int(state["tasks_done"])
        else:
            outcome = MethodOutcome(
                name, method_config, np.full((T + 1, len(benchmark.eval_splits)), np.nan)
            )
            with seeded(derive_seed(config.seed, name, "eval", 0)) as generator:
                tick = time.perf_counter()
                outcome.matrix[0] = evaluate_row(
                    method,
                    benchmark,
                    0,
                    context(0, generator),
                    features,
                    config.eval_future,
                    config.num_workers,
                )
                outcome.eval_seconds.append(time.perf_counter() - tick)
            tasks_done = 0
            tracker.end_task(0, task_metrics(outcome.matrix[0], 0, columns, weights))
            self._save(checkpoint_path, method, outcome, 0, tracker)
        bar = tqdm(total=T, initial=tasks_done, desc=name, unit="task", disable=not self.progress)
        for t in range(tasks_done, T):
            task = benchmark.tasks[t]
            with seeded(derive_seed(config.seed, name, "learn", t)) as generator:
                ctx = context(t, generator)
                data = task_data(benchmark, t, method.inputs, features, backbone.preprocess)
                tick = time.perf_counter()
                method.learn(data, ctx)
                outcome.learn_seconds.append(time.perf_counter() - tick)
            with seeded(derive_seed(config.seed, name, "eval", t + 1)) as generator:
                tick = time.perf_counter()
                outcome.matrix[t + 1] = evaluate_row(
                    method,
                    benchmark,
                    t + 1,
                    context(t + 1, generator),
                    features,
                    config.eval_future,
                    config.num_workers,
                )
                outcome.eval_seconds.append(time.perf_counter() - tick)
            tracker.end_task(t + 1, task_metrics(outcome.matrix[t + 1], t + 1, columns, weights))
            self._save(checkpoint_path, method, outcome, t + 1, tracker)
            bar.set_postfix_str(f"{task.name}: {np.nanmean(outcome.matrix[t + 1][: t + 1]):.1f}%")
            bar.update(1)
        bar.close()
        tracker.close()
        outcome.training = tracker.loss_summary(T)
        return outcome

    def _save(
        self,
        path: Path,
        method: Method,
        outcome: MethodOutcome,
        tasks_done: int,
        tracker: MethodTracker,
    ) -> None:
        save_checkpoint(
            path,
            {
                "method": outcome.name,
                "tasks_done": tasks_done,
                "method_state": method.state_dict(),
                "matrix": outcome.matrix.tolist(),
                "learn_seconds": outcome.learn_seconds,
                "eval_seconds": outcome.eval_seconds,
                "torch_rng_state": torch.get_rng_state(),
                "tracking": tracker.state_dict(),
            },
        )


def run(config: RunConfig, *, resume: bool = False, progress: bool = True) -> RunOutcome:
    """Run ``config`` and return its outcome (call :func:`driftless.report.write_report` to save it)."""
    return Engine(config, resume=resume, progress=progress).run()
