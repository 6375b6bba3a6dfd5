"""Tasks and contexts shared by several test modules, built outside the engine: toy-cil with the tiny
random CLIP for the image methods, and synthetic feature tasks (no backbone) for the feature methods.

Test modules import this file by name: pytest's default import mode puts tests/ on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from driftless.backbones import tiny_random_clip
from driftless.backbones.clip import CLIPBackbone
from driftless.benchmarks.protocol import Benchmark
from driftless.benchmarks.registry import load_benchmark
from driftless.methods.base import Context, LabelSpace, TaskData
from driftless.methods.parts.text_classifier import TextEmbeddingCache

ToySetup = tuple[Benchmark, CLIPBackbone, TextEmbeddingCache]
"""(toy-cil, the tiny random CLIP, a text cache of that CLIP)."""


# -- toy-cil and the tiny random CLIP, for image methods ------------------------------------------


def toy_image_setup(data_root: Path) -> ToySetup:
    """toy-cil generated under ``data_root``, ``tiny_random_clip(seed=0)`` and a text cache already
    holding every class's embedding."""
    benchmark = load_benchmark("toy-cil", data_root)
    backbone = tiny_random_clip(seed=0)
    texts = TextEmbeddingCache(backbone)
    texts(LabelSpace.of(benchmark, range(len(benchmark.classes))))
    return benchmark, backbone, texts


def image_context(toy: ToySetup, seed: int) -> Context:
    """A CPU context for one task, its generator seeded with ``seed``."""
    # imported here: lightning takes seconds to import and the feature-method tests never need it
    from lightning.fabric import Fabric

    _, backbone, texts = toy
    fabric = Fabric(accelerator="cpu", devices=1, precision="32-true")
    return Context(backbone, fabric, torch.Generator().manual_seed(seed), texts, 64, False)


def image_task_data(toy: ToySetup, t: int) -> TaskData:
    """Task ``t`` of toy-cil as the engine hands it to an image method."""
    from driftless.engine.inputs import ImageSamples  # imports lightning: see image_context

    benchmark, backbone, _ = toy
    task = benchmark.tasks[t]
    images = ImageSamples(benchmark, task.train, backbone.preprocess)
    return TaskData(task, images.labels, LabelSpace.of(benchmark, task.class_ids),
                    LabelSpace.of(benchmark, benchmark.seen_class_ids(t + 1)), images=images)  # fmt: skip


# -- synthetic features, for feature methods -------------------------------------------------------


def synthetic_label_space(class_ids: Sequence[int]) -> LabelSpace:
    """Classes named ``class <id>``, one template each."""
    ids = tuple(int(c) for c in class_ids)
    return LabelSpace(
        ids,
        tuple(f"class {c}" for c in ids),
        tuple(("a photo of a {}.",) for _ in ids),
        tuple("synthetic" for _ in ids),
    )


def feature_context(seed: int, *, num_classes: int, dim: int, logit_scale: float) -> Context:
    """A context without a backbone: class c's text embedding is row c of a fixed random matrix."""
    texts = F.normalize(
        torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(99)), dim=-1
    )
    return Context(
        backbone=SimpleNamespace(logit_scale=logit_scale),
        fabric=SimpleNamespace(device=torch.device("cpu")),
        generator=torch.Generator().manual_seed(seed),
        text_embeddings=lambda space: texts[list(space.class_ids)],
    )


def feature_tasks(
    features: torch.Tensor,
    labels: torch.Tensor,
    split: Sequence[Sequence[int]],
    order: Sequence[Sequence[int]] | None = None,
) -> list[TaskData]:
    """TaskData for each block of classes in ``split``; ``order[t]`` permutes task t's rows."""
    tasks, seen = [], []
    for t, block in enumerate(split):
        rows = torch.nonzero(torch.isin(labels, torch.tensor(block))).flatten()
        if order is not None:
            rows = rows[torch.as_tensor(order[t])]
        seen += list(block)
        tasks.append(
            TaskData(
                task=SimpleNamespace(index=t, name=f"task {t}", class_ids=tuple(block)),
                labels=labels[rows],
                label_space=synthetic_label_space(block),
                seen_label_space=synthetic_label_space(seen),
                features=features[rows],
            )
        )
    return tasks
