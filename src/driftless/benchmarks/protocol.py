"""Protocols as data: a benchmark is datasets + a global class list + tasks + evaluation splits.

Two protocols exist:

- ``class-incremental``: one dataset whose classes arrive in blocks. After task t each block k ≤ t is
  evaluated over all classes seen so far; blocks k > t ("future") may be evaluated over *all*
  classes of the benchmark, which gives CI-Transfer. Row 0 (before training) evaluates every block
  over all classes.
- ``multi-domain`` (MTIL): each task is a whole dataset; every dataset is evaluated after every task,
  over its own classes (task identity known at test time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from driftless.benchmarks.orders import resolve_order
from driftless.data.dataset import Dataset
from driftless.errors import ConfigError

Protocol = Literal["class-incremental", "multi-domain"]


@dataclass(frozen=True)
class ClassInfo:
    """One class of the benchmark's global label space."""

    id: int  # global id: dataset offset + the dataset's own label
    name: str
    dataset: str
    local_label: int
    templates: tuple[str, ...]


@dataclass(frozen=True)
class SampleSet:
    """Some samples of one split of one dataset."""

    dataset: str
    split: str
    indices: np.ndarray


@dataclass(frozen=True)
class Task:
    """What a method learns at one step: the new classes and their training samples."""

    index: int  # 0-based
    name: str
    class_ids: tuple[int, ...]
    train: tuple[SampleSet, ...]


@dataclass(frozen=True)
class EvalSplit:
    """A column of the accuracy matrix: test samples, and the classes they belong to."""

    name: str
    samples: SampleSet
    class_ids: tuple[int, ...]
    task_index: int  # the task that introduces these classes


@dataclass(frozen=True)
class Benchmark:
    """A continual-learning protocol, fully resolved: datasets, the global class list, the tasks in order and the evaluation splits (matrix columns)."""

    name: str
    protocol: Protocol
    datasets: Mapping[str, Dataset]
    classes: tuple[ClassInfo, ...]
    tasks: tuple[Task, ...]
    eval_splits: tuple[EvalSplit, ...]
    description: str = ""
    method_defaults: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    """Per-method settings the benchmark's spec suggests; a run's own method config wins."""
    seed_varies: tuple[str, ...] = ()
    """What the run seed changed in this benchmark (``class order``, ``images``); empty: fixed."""

    @property
    def num_tasks(self) -> int:
        """Number of tasks T."""
        return len(self.tasks)

    def seen_class_ids(self, tasks_done: int) -> tuple[int, ...]:
        """Classes of the first ``tasks_done`` tasks, in task order."""
        return tuple(c for task in self.tasks[:tasks_done] for c in task.class_ids)

    def labels(self, samples: SampleSet) -> np.ndarray:
        """Global class ids of ``samples`` (dataset offset + the dataset's own labels)."""
        offset = next(c.id for c in self.classes if c.dataset == samples.dataset)
        local = self.datasets[samples.dataset].split(samples.split).labels[samples.indices]
        return local + offset

    def all_class_ids(self) -> tuple[int, ...]:
        """Every class of the benchmark, in task order."""
        return self.seen_class_ids(self.num_tasks)

    def eval_label_space(
        self, tasks_done: int, split: EvalSplit, eval_future: bool
    ) -> tuple[int, ...] | None:
        """Classes to predict over when evaluating ``split`` after ``tasks_done`` tasks, or None when
        that cell is not evaluated (future blocks with ``eval_future`` off)."""
        if self.protocol == "multi-domain":
            dataset = self.classes[split.class_ids[0]].dataset
            return tuple(c.id for c in self.classes if c.dataset == dataset)
        if tasks_done == 0:
            return self.all_class_ids()
        if split.task_index < tasks_done:
            return self.seen_class_ids(tasks_done)
        return self.all_class_ids() if eval_future else None


def _class_infos(datasets: Sequence[Dataset]) -> tuple[list[ClassInfo], dict[str, int]]:
    infos: list[ClassInfo] = []
    offsets: dict[str, int] = {}
    for ds in datasets:
        if ds.name in offsets:
            raise ConfigError(
                f"datasets: {ds.name!r} appears twice; give each dataset a distinct name"
            )
        offset = offsets[ds.name] = len(infos)
        infos.extend(
            ClassInfo(offset + i, name, ds.name, i, ds.templates)
            for i, name in enumerate(ds.class_names)
        )
    return infos, offsets


def _few_shot(labels: np.ndarray, indices: np.ndarray, shots: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        if len(members) < shots:
            raise ConfigError(
                f"shots: class {label} has only {len(members)} training images, < {shots}"
            )
        chosen.append(np.sort(rng.choice(members, size=shots, replace=False)))
    return np.sort(np.concatenate(chosen))


def class_incremental(
    dataset: Dataset,
    base: int,
    increment: int | Sequence[int],
    order: str | Sequence[int] | None = "identity",
    *,
    name: str | None = None,
    shots: int | None = None,
    seed: int = 0,
    description: str = "",
) -> Benchmark:
    """B{base}-Inc{increment}: ``base`` classes in the first task (0 = same as the others), then
    ``increment`` per task, in the class ``order``. ``increment`` may be an explicit list of task
    sizes. ``shots`` keeps that many training images per class (few-shot), drawn with ``seed``."""
    n = dataset.num_classes
    permutation = resolve_order(order, n)
    if isinstance(increment, int):
        if increment <= 0:
            raise ConfigError(f"increment: must be positive, got {increment}")
        if base < 0 or base >= n:
            raise ConfigError(f"base: must be in 0..{n - 1}, got {base}")
        rest = n - base
        if rest % increment:
            raise ConfigError(
                f"increment: {n} classes with base {base} leave {rest}, not a multiple of {increment}"
            )
        sizes = ([base] if base else []) + [increment] * (rest // increment)
    else:
        sizes = [int(s) for s in increment]
        if any(s <= 0 for s in sizes) or sum(sizes) != n:
            raise ConfigError(
                f"increment: task sizes {sizes} must be positive and sum to {n} classes"
            )
    if len(sizes) < 1:
        raise ConfigError("increment: the benchmark has no task")
    infos, _ = _class_infos([dataset])
    train_labels = dataset.split("train").labels
    test_labels = dataset.split("test").labels
    tasks, evals, start = [], [], 0
    for t, size in enumerate(sizes):
        block = permutation[start : start + size]
        start += size
        train_idx = np.flatnonzero(np.isin(train_labels, block))
        if shots is not None:
            train_idx = _few_shot(train_labels, train_idx, shots, seed + t)
        test_idx = np.flatnonzero(np.isin(test_labels, block))
        tasks.append(
            Task(t, f"task {t + 1}", tuple(block), (SampleSet(dataset.name, "train", train_idx),))
        )
        evals.append(
            EvalSplit(f"block {t + 1}", SampleSet(dataset.name, "test", test_idx), tuple(block), t)
        )
    return Benchmark(
        name or f"{dataset.name}-b{base}inc{increment}",
        "class-incremental",
        {dataset.name: dataset},
        tuple(infos),
        tuple(tasks),
        tuple(evals),
        description,
    )


def multi_domain(
    datasets: Sequence[Dataset],
    *,
    name: str | None = None,
    shots: int | None = None,
    seed: int = 0,
    description: str = "",
) -> Benchmark:
    """MTIL-style: task t learns the whole of ``datasets[t]``; each dataset is evaluated over its own
    classes after every task. ``shots`` keeps that many training images per class."""
    if len(datasets) < 1:
        raise ConfigError("datasets: a multi-domain benchmark needs at least one dataset")
    infos, offsets = _class_infos(datasets)
    tasks, evals = [], []
    for t, ds in enumerate(datasets):
        ids = tuple(offsets[ds.name] + i for i in range(ds.num_classes))
        train_idx = np.arange(len(ds.split("train")))
        if shots is not None:
            train_idx = _few_shot(ds.split("train").labels, train_idx, shots, seed + t)
        tasks.append(Task(t, ds.name, ids, (SampleSet(ds.name, "train", train_idx),)))
        test_idx = np.arange(len(ds.split("test")))
        evals.append(EvalSplit(ds.name, SampleSet(ds.name, "test", test_idx), ids, t))
    return Benchmark(
        name or "-".join(d.name for d in datasets),
        "multi-domain",
        {d.name: d for d in datasets},
        tuple(infos),
        tuple(tasks),
        tuple(evals),
        description,
    )
