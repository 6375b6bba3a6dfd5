"""Evaluation: one row of the accuracy matrix (every evaluation split the protocol asks for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader

from driftless.benchmarks.protocol import Benchmark
from driftless.engine.distributed import my_batches, reduce_counts
from driftless.engine.inputs import FeatureTable, ImageSamples
from driftless.errors import MethodContractError
from driftless.methods.base import Context, LabelSpace, Method

if TYPE_CHECKING:
    from lightning.fabric import Fabric


def checked_logits(
    method: Method, label: str, batch: torch.Tensor, label_space: LabelSpace, ctx: Context
) -> torch.Tensor:
    """``method.logits`` held to the protocol: a (batch, len(label_space)) tensor of finite scores.
    A wrong shape would otherwise be scored silently (argmax over too few columns gives believable
    but wrong accuracies)."""
    logits = method.logits(batch, label_space, ctx)
    problem = logits_problem(logits, (len(batch), len(label_space)))
    if problem is not None:
        raise MethodContractError(f"method {label}: logits {problem}")
    return logits


def logits_problem(logits: object, expected: tuple[int, int]) -> str | None:
    """What breaks the contract in what ``logits`` returned for a batch and label space of
    ``expected`` = (batch, classes), said as "returned …"; None when it keeps it."""
    if not isinstance(logits, torch.Tensor):
        return (
            f"returned {type(logits).__name__}, expected a tensor of shape {expected} "
            "(batch, classes in the label space)"
        )
    if tuple(logits.shape) != expected:
        return f"returned shape {tuple(logits.shape)}, expected (batch, classes) = {expected}"
    if not torch.isfinite(logits).all():
        bad = int((~torch.isfinite(logits)).sum())
        return f"returned {bad} non-finite value(s) (nan or inf) in a {expected} batch"
    return None


def _batches(
    method: Method,
    benchmark: Benchmark,
    split_index: int,
    features: FeatureTable | None,
    ctx: Context,
    num_workers: int,
    fabric: Fabric | None = None,
):
    split = benchmark.eval_splits[split_index]
    if method.inputs == "features":
        assert features is not None
        rows = features.rows([split.samples])
        labels = torch.from_numpy(benchmark.labels(split.samples))
        for start in range(0, len(rows), ctx.batch_size):
            yield rows[start : start + ctx.batch_size], labels[start : start + ctx.batch_size]
    else:
        dataset = ImageSamples(benchmark, [split.samples], ctx.backbone.preprocess)
        if fabric is None:
            yield from DataLoader(dataset, batch_size=ctx.batch_size, num_workers=num_workers)
        else:  # this rank's share of the batches a single process would score
            mine = my_batches(len(dataset), ctx.batch_size, fabric.global_rank, fabric.world_size)
            sampler = [list(range(start, stop)) for start, stop in mine]
            yield from DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)


def evaluate_row(
    method: Method,
    benchmark: Benchmark,
    tasks_done: int,
    ctx: Context,
    features: FeatureTable | None,
    eval_future: bool,
    num_workers: int = 0,
    fabric: Fabric | None = None,
    label: str | None = None,
) -> np.ndarray:
    """Top-1 accuracy (percent) on every evaluation split after ``tasks_done`` tasks; nan for the
    cells the protocol does not evaluate. Each split is scored over the label space the protocol
    gives it (:meth:`Benchmark.eval_label_space`). With ``fabric`` (an image method in a run of
    several processes) each rank scores its share of the batches and the counts are summed. Every
    ``logits`` call is checked (:func:`checked_logits`); errors name the method by ``label``
    (default: its name)."""
    label = label or method.name
    row = np.full(len(benchmark.eval_splits), np.nan)
    for e, split in enumerate(benchmark.eval_splits):
        class_ids = benchmark.eval_label_space(tasks_done, split, eval_future)
        if class_ids is None:
            continue
        label_space = LabelSpace.of(benchmark, class_ids)
        correct = total = 0
        with torch.inference_mode():
            for batch, labels in _batches(method, benchmark, e, features, ctx, num_workers, fabric):
                logits = checked_logits(method, label, batch.to(ctx.device), label_space, ctx)
                predicted = logits.argmax(dim=1).cpu()
                correct += int((predicted == label_space.positions(labels)).sum())
                total += len(labels)
        if fabric is not None:
            correct, total = reduce_counts(fabric, correct, total)
        row[e] = 100.0 * correct / total if total else np.nan
    return row
