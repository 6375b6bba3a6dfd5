"""Benchmarks: protocols as data (class-incremental and few-shot class-incremental splits, multi-domain and domain-incremental sequences) and a registry."""

from driftless.benchmarks.orders import (
    CONTINUAL_CLIP_CIFAR100_ORDER,
    resolve_order,
    seeded_permutation,
)
from driftless.benchmarks.protocol import (
    Benchmark,
    ClassInfo,
    EvalSplit,
    SampleSet,
    Task,
    class_incremental,
    domain_incremental,
    few_shot_class_incremental,
    multi_domain,
)
from driftless.benchmarks.registry import (
    BenchmarkSpec,
    DatasetSpec,
    list_benchmarks,
    load_benchmark,
    load_benchmark_spec,
)

__all__ = [
    "CONTINUAL_CLIP_CIFAR100_ORDER",
    "Benchmark",
    "BenchmarkSpec",
    "ClassInfo",
    "DatasetSpec",
    "EvalSplit",
    "SampleSet",
    "Task",
    "class_incremental",
    "domain_incremental",
    "few_shot_class_incremental",
    "list_benchmarks",
    "load_benchmark",
    "load_benchmark_spec",
    "multi_domain",
    "resolve_order",
    "seeded_permutation",
]
