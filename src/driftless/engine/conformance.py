"""The method-conformance suite: the contract every method keeps, checked on a toy benchmark.

Like scikit-learn's ``check_estimator``, :func:`check_method` takes a registered method by name and
runs it on ``toy-cil`` (generated coloured shapes) with the tiny random CLIP, exactly as the engine
would — seeds derived from (seed, method, task), cached features for ``inputs = "features"``
methods, preprocessed pixels for ``inputs = "images"`` — and reports one :class:`CheckOutcome` per
check:

1. ``config``: the typed config rejects an unknown field;
2. ``scores before learning``: logits over seen-to-be, unseen and mixed label spaces before any
   ``learn``, of shape (batch, classes) and finite;
3. ``scores after each task``: the same after every task, over the seen classes, the classes not
   learned yet and a shuffled mix of both;
4. ``state round trip``: ``state_dict()`` through ``torch.save`` / ``torch.load(weights_only=True)``
   into a fresh instance gives identical logits;
5. ``deterministic``: two runs with the same seed give identical logits after every task;
6. ``resume after each task``: a run restored from its state after every task (a fresh instance
   each time, as ``--resume`` does) gives the same logits as an uninterrupted one.

A check that raises is a failure whose detail is the exception; checks that need a finished run
are skipped (and reported as failed) when learning itself fails.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from driftless.benchmarks.protocol import Benchmark, SampleSet
from driftless.engine.evaluation import logits_problem
from driftless.methods.base import Context, LabelSpace, Method
from driftless.methods.registry import build_method, method_class

CHECKS = (
    "config rejects unknown fields",
    "scores before learning",
    "scores after each task",
    "state round trip",
    "deterministic",
    "resume after each task",
)

_EVAL_IMAGES = 24  # test images scored by every check


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict; ``detail`` says why it failed (or what was checked)."""

    check: str
    passed: bool
    detail: str = ""


class _ContractBroken(Exception):
    """A method broke the contract; the message says how."""


@dataclass
class ConformanceToy:
    """toy-cil with the tiny random CLIP, its features encoded: what the engine would hand a
    method. Build it once with :func:`conformance_toy` to check several methods."""

    benchmark: Benchmark
    backbone: Any
    texts: Any
    fabric: Any
    features: Any  # FeatureTable
    eval_features: torch.Tensor
    eval_pixels: torch.Tensor


def conformance_toy(data_root: Path) -> ConformanceToy:
    """Generate toy-cil under ``data_root`` and encode every image with the tiny random CLIP."""
    # imported here: lightning and transformers take seconds to import
    from lightning.fabric import Fabric
    from torch.utils.data import DataLoader

    from driftless.backbones import tiny_random_clip
    from driftless.benchmarks.registry import load_benchmark
    from driftless.engine.inputs import FeatureTable, ImageSamples
    from driftless.methods.parts.text_classifier import TextEmbeddingCache

    benchmark = load_benchmark("toy-cil", data_root)
    backbone = tiny_random_clip(seed=0)
    texts = TextEmbeddingCache(backbone)
    texts(LabelSpace.of(benchmark, range(len(benchmark.classes))))
    fabric = Fabric(accelerator="cpu", devices=1, precision="32-true")
    used = {(s.dataset, s.split) for t in benchmark.tasks for s in t.train} | {
        (e.samples.dataset, e.samples.split) for e in benchmark.eval_splits
    }
    arrays = {}
    with torch.inference_mode():
        for dataset, split in sorted(used):
            whole = benchmark.datasets[dataset].split(split)
            samples = SampleSet(dataset, split, np.arange(len(whole)))
            pixels = DataLoader(ImageSamples(benchmark, [samples], backbone.preprocess), 256)
            arrays[(dataset, split)] = torch.cat(
                [backbone.encode_images(x) for x, _ in pixels]
            ).numpy()
    features = FeatureTable(arrays)
    # a test batch drawn across every evaluation split, so it holds classes of every task
    eval_sets = [e.samples for e in benchmark.eval_splits]
    images = ImageSamples(benchmark, eval_sets, backbone.preprocess)
    picks = np.linspace(0, len(images) - 1, _EVAL_IMAGES).round().astype(int)
    pixels = torch.stack([images[int(i)][0] for i in picks])
    eval_features = features.rows(eval_sets)[torch.from_numpy(picks)]
    return ConformanceToy(benchmark, backbone, texts, fabric, features, eval_features, pixels)


def _label_spaces(toy: ConformanceToy, tasks_done: int, seed: int) -> dict[str, LabelSpace]:
    """Seen, unseen and a shuffled mix of both, after ``tasks_done`` tasks."""
    benchmark = toy.benchmark
    seen = list(benchmark.seen_class_ids(tasks_done)) if tasks_done else []
    unseen = [c for c in range(len(benchmark.classes)) if c not in set(seen)]
    mixed = seen[: max(1, len(seen) // 2)] + unseen[: max(1, len(unseen) // 2)]
    random.Random(seed + tasks_done).shuffle(mixed)
    # before learning, the first task's classes stand for the seen ones
    spaces = {"seen": seen} if seen else {"first task": list(benchmark.tasks[0].class_ids)}
    spaces |= {"unseen": unseen, "mixed": mixed}
    return {k: LabelSpace.of(benchmark, v) for k, v in spaces.items() if v}


class _Runner:
    """Runs one method on the toy as the engine does, and scores the toy's test batch."""

    def __init__(self, toy: ConformanceToy, name: str, values: Mapping[str, Any], seed: int):
        from driftless.engine.seeding import derive_seed, seeded

        self.toy, self.name, self.values, self.seed = toy, name, dict(values), seed
        self._derive, self._seeded = derive_seed, seeded

    def build(self) -> Method:
        return build_method(self.name, self.values)

    def context(self, generator: torch.Generator) -> Context:
        toy = self.toy
        return Context(toy.backbone, toy.fabric, generator, toy.texts, 64, False)

    def learn(self, method: Method, t: int) -> None:
        from driftless.engine.inputs import task_data

        toy = self.toy
        data = task_data(toy.benchmark, t, method.inputs, toy.features, toy.backbone.preprocess)
        with self._seeded(self._derive(self.seed, self.name, "learn", t)) as generator:
            method.learn(data, self.context(generator))

    def scores(self, method: Method, tasks_done: int) -> dict[str, torch.Tensor]:
        """Logits of the test batch over each label space, checked for shape and finiteness."""
        batch = self.toy.eval_features if method.inputs == "features" else self.toy.eval_pixels
        out = {}
        for kind, space in _label_spaces(self.toy, tasks_done, self.seed).items():
            with (
                self._seeded(self._derive(self.seed, self.name, "eval", tasks_done)) as generator,
                torch.inference_mode(),
            ):
                logits = method.logits(batch, space, self.context(generator))
            problem = logits_problem(logits, (len(batch), len(space)))
            if problem is not None:
                raise _ContractBroken(
                    f"logits over the {kind} classes after {tasks_done} task(s) {problem}"
                )
            out[kind] = logits.detach().cpu().clone()
        return out


def _round_trip(runner: _Runner, method: Method) -> Method:
    """A fresh instance loaded from ``method``'s state as a checkpoint would hold it."""
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    try:
        state = torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _ContractBroken(
            f"state_dict() does not load with torch.load(weights_only=True): {exc}"
        ) from exc
    fresh = runner.build()
    fresh.load_state_dict(state)
    return fresh


def _differences(
    expected: Mapping[str, torch.Tensor], actual: Mapping[str, torch.Tensor], where: str
) -> str | None:
    for kind, logits in expected.items():
        if not torch.equal(logits, actual[kind]):
            gap = (logits - actual[kind]).abs().max().item()
            return f"{where}: logits over the {kind} classes differ (max |Δ| = {gap:.3g})"
    return None


def _guarded(check: str, body: Callable[[], str]) -> CheckOutcome:
    try:
        detail = body()
    except _ContractBroken as exc:
        return CheckOutcome(check, False, str(exc))
    except Exception as exc:
        return CheckOutcome(check, False, f"raised {type(exc).__name__}: {exc}")
    return CheckOutcome(check, not detail.startswith("FAIL "), detail.removeprefix("FAIL "))


def iter_checks(
    name: str,
    values: Mapping[str, Any] | None = None,
    *,
    data_root: Path,
    tasks: int = 2,
    seed: int = 0,
    toy: ConformanceToy | None = None,
) -> Iterator[CheckOutcome]:
    """Run the suite on method ``name`` (with config ``values``), yielding each outcome as it is
    known. ``tasks`` toy-cil tasks are learned (at least 2, so resuming crosses a task); ``toy``
    reuses a :func:`conformance_toy` instead of building one under ``data_root``."""
    cls = method_class(name)
    values = dict(values or {})

    def config_check() -> str:
        try:
            cls.Config.model_validate({**values, "surely_not_a_field": 1})
        except ValidationError:
            return "an unknown field is a validation error"
        return "FAIL Config accepted the unknown field 'surely_not_a_field' (use extra='forbid')"

    yield _guarded(CHECKS[0], config_check)

    toy = toy or conformance_toy(data_root)
    tasks = max(2, min(tasks, toy.benchmark.num_tasks))
    # the benchmark's own settings for the method first, as the engine applies them
    runner = _Runner(toy, name, {**toy.benchmark.method_defaults.get(name, {}), **values}, seed)

    fresh = runner.build()
    yield _guarded(
        CHECKS[1],
        lambda: f"{len(runner.scores(fresh, 0))} label spaces, shapes and values fine",
    )

    # the reference run, kept per task for the later checks
    reference: list[dict[str, torch.Tensor]] = []
    methods: list[Method] = []

    def learn_all() -> str:
        method = runner.build()
        for t in range(tasks):
            runner.learn(method, t)
            reference.append(runner.scores(method, t + 1))
        methods.append(method)
        return f"{tasks} tasks learned; seen, unseen and mixed label spaces scored after each"

    learned = _guarded(CHECKS[2], learn_all)
    yield learned
    if not learned.passed:
        for check in CHECKS[3:]:
            yield CheckOutcome(check, False, "not run: learning or scoring failed")
        return

    def round_trip() -> str:
        restored = _round_trip(runner, methods[0])
        problem = _differences(reference[-1], runner.scores(restored, tasks), "after loading")
        return f"FAIL {problem}" if problem else "identical logits after torch.save/torch.load"

    yield _guarded(CHECKS[3], round_trip)

    def rerun(restore_after_each_task: bool) -> str | None:
        """A second run from scratch (restored from its state after every task, if asked), compared
        with the reference after every task: the first difference, or None."""
        method = runner.build()
        for t in range(tasks):
            runner.learn(method, t)
            if restore_after_each_task:
                method = _round_trip(runner, method)
            problem = _differences(reference[t], runner.scores(method, t + 1), f"task {t + 1}")
            if problem:
                return problem
        return None

    def deterministic() -> str:
        problem = rerun(restore_after_each_task=False)
        if problem:
            return f"FAIL two runs with seed {seed} differ at {problem}"
        return f"two runs with seed {seed} give identical logits after every task"

    yield _guarded(CHECKS[4], deterministic)

    def resumed() -> str:
        problem = rerun(restore_after_each_task=True)
        if problem:
            return f"FAIL a run restored after every task differs from an uninterrupted one at {problem}"
        return "restored from its state after every task, equal to an uninterrupted run"

    yield _guarded(CHECKS[5], resumed)


def check_method(
    name: str,
    values: Mapping[str, Any] | None = None,
    *,
    data_root: Path,
    tasks: int = 2,
    seed: int = 0,
    toy: ConformanceToy | None = None,
) -> list[CheckOutcome]:
    """Every check of the suite on method ``name``; see :func:`iter_checks`."""
    return list(iter_checks(name, values, data_root=data_root, tasks=tasks, seed=seed, toy=toy))


def failures(outcomes: Sequence[CheckOutcome]) -> list[CheckOutcome]:
    """The failed checks among ``outcomes``."""
    return [o for o in outcomes if not o.passed]
