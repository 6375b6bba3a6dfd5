"""Checks that turn a machine or a configuration that cannot run into one clear error, before any
work: the accelerator asked for must exist; a dry run builds the benchmark, checks that every image
file is there and locates the backbone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from driftless.errors import ConfigError, DriftlessError

if TYPE_CHECKING:
    from driftless.config import RunConfig


def check_accelerator(accelerator: str) -> None:
    """ConfigError if ``accelerator`` (cuda, mps) is not available on this machine."""
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "accelerator: --accelerator cuda, but torch finds no CUDA GPU on this machine "
            f"(torch {torch.__version__}); use --accelerator cpu (or auto), or a CUDA build of "
            "torch on a machine with a GPU"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "accelerator: --accelerator mps, but Apple's MPS is not available on this machine; "
            "use --accelerator cpu (or auto)"
        )


def dry_run(config: RunConfig, say: Callable[[str], None] = print) -> None:
    """Validate a run configuration and its data without training: build the benchmark (reading
    every dataset's index files), check that every image file exists, locate the backbone. Each
    finding goes to ``say`` as a line; missing image files raise DriftlessError naming them."""
    from driftless.backbones.registry import locate_backbone
    from driftless.benchmarks.registry import load_benchmark
    from driftless.data.ondisk import missing_files

    benchmark = load_benchmark(config.benchmark, config.data_root, run_seed=config.seed)
    say(
        f"benchmark {benchmark.name}: {benchmark.protocol}, {benchmark.num_tasks} tasks, "
        f"{len(benchmark.classes)} classes (data root {config.data_root})"
    )
    problems = []
    for name, dataset in benchmark.datasets.items():
        counts = ", ".join(f"{s} {len(split):,}" for s, split in sorted(dataset.splits.items()))
        where = dataset.metadata.get("folder", "generated")
        say(f"  {name}: {dataset.num_classes} classes, {counts} ({where})")
        for split_name, split in sorted(dataset.splits.items()):
            absent = missing_files(split)
            if absent:
                problems.append(
                    f"{name}/{split_name}: {len(absent)} image files missing, e.g. {absent[0]}"
                )
    say(f"backbone {config.backbone}: {locate_backbone(config.backbone, config.download)}")
    say(f"methods: {', '.join(config.resolved_methods())}")
    if config.reference is not None:
        values = ", ".join(f"{k} {v}" for k, v in config.reference.metrics.items())
        say(f"reproduces: {values} ({config.reference.source})")
    if problems:
        raise DriftlessError("dry run: " + "; ".join(problems))
    say("dry run: configuration and data are valid; nothing was trained")
