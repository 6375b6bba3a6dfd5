"""Protocols as data: a benchmark is datasets + a global class list + tasks + evaluation splits.

Four protocols exist:

- ``class-incremental``: one dataset whose classes arrive in blocks. After task t each block k ≤ t is
  evaluated over all classes seen so far; blocks k > t ("future") may be evaluated over *all*
  classes of the benchmark, which gives CI-Transfer. Row 0 (before training) evaluates every block
  over all classes.
- ``few-shot class-incremental`` (FSCIL, TOPIC/CEC's convention): class-incremental with a base
  session holding every training image of its classes, then sessions of ``ways`` classes with
  ``shots`` images each — drawn with a seed, or read from fixed session lists. Evaluated as
  class-incremental (column k = session k's classes' test images).
- ``multi-domain`` (MTIL): each task is a whole dataset; every dataset is evaluated after every task,
  over its own classes (task identity known at test time).
- ``domain-incremental``: one dataset whose images come from several domains; every task has the
  same classes, drawn from one new domain. Every test domain is evaluated after every task over
  *all* classes (no task identity). A dataset holds its domains as splits named
  ``<domain>/train`` and ``<domain>/test``; the test domains may be domains no task trains on
  (CORe50's sessions 3, 7 and 10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import numpy as np

from driftless.benchmarks.orders import resolve_order
from driftless.data.dataset import Dataset
from driftless.errors import ConfigError

Protocol = Literal[
    "class-incremental", "few-shot class-incremental", "multi-domain", "domain-incremental"
]

#: the protocols whose tasks bring new classes (evaluated block by block, as class-incremental)
CLASS_INCREMENTAL_PROTOCOLS = ("class-incremental", "few-shot class-incremental")


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
    task_index: int
    """The task that introduces these classes (domain-incremental: that trains on this domain;
    -1 when no task does, as for CORe50's test sessions)."""


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
        """Classes of the first ``tasks_done`` tasks, in task order, each once (domain-incremental
        tasks all share the same classes)."""
        return tuple(dict.fromkeys(c for task in self.tasks[:tasks_done] for c in task.class_ids))

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
        if self.protocol == "domain-incremental":
            return self.all_class_ids()
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
    train_labels = dataset.split("train").labels
    starts = np.cumsum([0, *sizes])
    blocks = [permutation[a:b] for a, b in pairwise(starts)]
    train_sets = []
    for t, block in enumerate(blocks):
        train_idx = np.flatnonzero(np.isin(train_labels, block))
        if shots is not None:
            train_idx = _few_shot(train_labels, train_idx, shots, seed + t)
        train_sets.append(train_idx)
    return _class_blocks_benchmark(
        dataset,
        "class-incremental",
        name or f"{dataset.name}-b{base}inc{increment}",
        blocks,
        train_sets,
        [(f"task {t + 1}", f"block {t + 1}") for t in range(len(blocks))],
        description,
    )


def _class_blocks_benchmark(
    dataset: Dataset,
    protocol: str,
    name: str,
    blocks: Sequence[Sequence[int]],
    train_sets: Sequence[np.ndarray],
    labels: Sequence[tuple[str, str]],
    description: str,
) -> Benchmark:
    """One dataset learned block of classes after block: task t trains on ``train_sets[t]`` (the
    training indices of ``blocks[t]``'s classes) and block t's test images are column t; ``labels``
    are each task's and each column's names."""
    infos, _ = _class_infos([dataset])
    test_labels = dataset.split("test").labels
    tasks, evals = [], []
    for t, (block, train_idx) in enumerate(zip(blocks, train_sets, strict=True)):
        task_name, split_name = labels[t]
        tasks.append(
            Task(t, task_name, tuple(block), (SampleSet(dataset.name, "train", train_idx),))
        )
        test_idx = np.flatnonzero(np.isin(test_labels, block))
        evals.append(
            EvalSplit(split_name, SampleSet(dataset.name, "test", test_idx), tuple(block), t)
        )
    return Benchmark(
        name,
        protocol,
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


def _session_blocks(
    labels: np.ndarray, sessions: Sequence[np.ndarray], permutation: Sequence[int]
) -> list[list[int]]:
    """The classes of each fixed session (in class-order position), checked to be disjoint."""
    rank = {c: i for i, c in enumerate(permutation)}
    blocks, seen = [], set()
    for s, indices in enumerate(sessions):
        classes = sorted({int(c) for c in labels[indices]}, key=rank.__getitem__)
        repeated = seen.intersection(classes)
        if not classes or repeated:
            raise ConfigError(
                f"session lists: session {s + 1} "
                + (f"repeats classes {sorted(repeated)[:5]}" if classes else "is empty")
            )
        seen.update(classes)
        blocks.append(classes)
    return blocks


def few_shot_class_incremental(
    dataset: Dataset,
    base: int,
    ways: int,
    shots: int,
    order: str | Sequence[int] | None = "identity",
    *,
    sessions: Sequence[np.ndarray] | None = None,
    name: str | None = None,
    seed: int = 0,
    description: str = "",
) -> Benchmark:
    """FSCIL: a base session with every training image of ``base`` classes, then sessions of
    ``ways`` classes with ``shots`` training images each (drawn with ``seed`` + session), until the
    classes run out. ``sessions`` instead fixes every session's training samples (indices into the
    train split, e.g. CEC's ``session_<k>.txt``); a missing base session (only sessions 2…) is every
    training image of the classes the lists leave out."""
    n = dataset.num_classes
    permutation = resolve_order(order, n)
    train_labels = dataset.split("train").labels
    if sessions is not None:
        listed = _session_blocks(train_labels, sessions, permutation)
        if sum(len(b) for b in listed) == n - base and base > 0:  # the lists start at session 2
            taken = {c for b in listed for c in b}
            first = [c for c in permutation if c not in taken]
            sessions = [np.flatnonzero(np.isin(train_labels, first)), *sessions]
            listed = [first, *listed]
        blocks, train_sets = listed, [np.sort(np.asarray(s, dtype=np.int64)) for s in sessions]
        sizes = [len(b) for b in blocks]
        if sizes[0] != base or any(size != ways for size in sizes[1:]):
            raise ConfigError(
                f"session lists: sessions of {sizes} classes, not base {base} then {ways}-way"
            )
        if [c for b in blocks for c in b] != permutation[: sum(sizes)]:
            raise ConfigError(
                "session lists: their classes do not follow the benchmark's class order "
                f"(first session: {blocks[0][:5]}…, order: {permutation[:5]}…)"
            )
    else:
        if not 0 < base < n or ways <= 0 or (n - base) % ways:
            raise ConfigError(
                f"base/increment: {n} classes need 0 < base < {n} and (classes − base) a "
                f"multiple of the ways, got base {base}, ways {ways}"
            )
        sizes = [base] + [ways] * ((n - base) // ways)
        starts = np.cumsum([0, *sizes])
        blocks = [permutation[a:b] for a, b in pairwise(starts)]
        train_sets = []
        for t, block in enumerate(blocks):
            indices = np.flatnonzero(np.isin(train_labels, block))
            train_sets.append(
                indices if t == 0 else _few_shot(train_labels, indices, shots, seed + t)
            )
    names = ["base session" if t == 0 else f"session {t + 1}" for t in range(len(blocks))]
    return _class_blocks_benchmark(
        dataset,
        "few-shot class-incremental",
        name or f"{dataset.name}-fscil",
        blocks,
        train_sets,
        [(label, label) for label in names],
        description,
    )


def domain_splits(dataset: Dataset) -> list[str]:
    """The domains of a domain dataset: the ``<domain>`` of its ``<domain>/train`` and
    ``<domain>/test`` splits, in the dataset's order."""
    return list(dict.fromkeys(s.rpartition("/")[0] for s in dataset.splits if "/" in s))


def domain_incremental(
    dataset: Dataset,
    domains: Sequence[str],
    test_domains: Sequence[str] | None = None,
    *,
    name: str | None = None,
    shots: int | None = None,
    seed: int = 0,
    description: str = "",
) -> Benchmark:
    """Task t learns every class from the images of ``domains[t]`` (split ``<domain>/train``);
    after each task every test domain (``test_domains``, default ``domains``; split
    ``<domain>/test``) is evaluated over all classes. ``shots`` keeps that many training images per
    class and domain."""
    if not domains:
        raise ConfigError("domains: a domain-incremental benchmark needs at least one domain")
    test_domains = list(domains if test_domains is None else test_domains)
    known = domain_splits(dataset)
    for field_name, wanted, split in (("domains", domains, "train"), ("test_domains", test_domains, "test")):  # fmt: skip
        absent = [d for d in wanted if f"{d}/{split}" not in dataset.splits]
        if absent:
            raise ConfigError(
                f"{field_name}: {dataset.name} has no {split} split for {absent}; its domains: "
                f"{known}"
            )
    if len(set(domains)) != len(domains):
        raise ConfigError(f"domains: {list(domains)} repeats a domain")
    infos, _ = _class_infos([dataset])
    every_class = tuple(range(dataset.num_classes))
    tasks = []
    for t, domain in enumerate(domains):
        split = f"{domain}/train"
        train_idx = np.arange(len(dataset.split(split)))
        if shots is not None:
            train_idx = _few_shot(dataset.split(split).labels, train_idx, shots, seed + t)
        tasks.append(Task(t, domain, every_class, (SampleSet(dataset.name, split, train_idx),)))
    evals = tuple(
        EvalSplit(
            domain,
            SampleSet(
                dataset.name, f"{domain}/test", np.arange(len(dataset.split(f"{domain}/test")))
            ),
            every_class,
            list(domains).index(domain) if domain in domains else -1,
        )
        for domain in test_domains
    )
    return Benchmark(
        name or f"{dataset.name}-dil",
        "domain-incremental",
        {dataset.name: dataset},
        tuple(infos),
        tuple(tasks),
        evals,
        description,
    )
