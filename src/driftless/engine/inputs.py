"""What the engine feeds methods: cached features or preprocessed image batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from driftless.backbones.preprocess import ImagePreprocess
from driftless.benchmarks.protocol import Benchmark, SampleSet
from driftless.methods.base import Inputs, LabelSpace, TaskData


class ImageSamples(torch.utils.data.Dataset):
    """(preprocessed pixels, global label) for some samples of a benchmark."""

    def __init__(
        self, benchmark: Benchmark, sample_sets: Sequence[SampleSet], preprocess: ImagePreprocess
    ):
        self.preprocess = preprocess
        self.items: list[tuple[SampleSet, int]] = []
        labels = []
        for samples in sample_sets:
            self.items.extend((samples, int(i)) for i in samples.indices)
            labels.append(benchmark.labels(samples))
        self.labels = (
            torch.from_numpy(np.concatenate(labels)) if labels else torch.empty(0, dtype=torch.long)
        )
        self.benchmark = benchmark

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        samples, index = self.items[i]
        split = self.benchmark.datasets[samples.dataset].split(samples.split)
        return self.preprocess(split.image(index)), int(self.labels[i])


class FeatureTable:
    """Features of every split a benchmark uses, keyed by (dataset, split), from the feature store."""

    def __init__(self, arrays: dict[tuple[str, str], np.ndarray]):
        self.arrays = arrays

    def rows(self, sample_sets: Sequence[SampleSet]) -> torch.Tensor:
        """Features of the given samples, in order, as one float32 tensor."""
        parts = [np.asarray(self.arrays[(s.dataset, s.split)][s.indices]) for s in sample_sets]
        return torch.from_numpy(np.concatenate(parts).astype(np.float32, copy=False))


def task_data(
    benchmark: Benchmark,
    t: int,
    inputs: Inputs,
    features: FeatureTable | None,
    preprocess: ImagePreprocess,
) -> TaskData:
    """Task ``t`` as ``learn`` receives it: its training samples as cached features or as
    preprocessed images (as the method's ``inputs`` says), their global labels and label spaces."""
    task = benchmark.tasks[t]
    labels = torch.from_numpy(np.concatenate([benchmark.labels(s) for s in task.train]))
    data = TaskData(
        task=task,
        labels=labels,
        label_space=LabelSpace.of(benchmark, task.class_ids),
        seen_label_space=LabelSpace.of(benchmark, benchmark.seen_class_ids(t + 1)),
    )
    if inputs == "features":
        if features is None:
            raise ValueError("task_data: a features method needs the feature table")
        data.features = features.rows(task.train)
    else:
        data.images = ImageSamples(benchmark, task.train, preprocess)
    return data
