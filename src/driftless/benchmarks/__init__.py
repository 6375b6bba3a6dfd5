"""Benchmarks: protocols as data (class-incremental and few-shot class-incremental splits,
multi-domain and domain-incremental sequences) and a registry.

Names are imported on first use (PEP 562), so that reading the registry (``driftless list``) does
not import the dataset code and torch.
"""

from __future__ import annotations

from driftless.lazy import lazy_exports

_WHERE = {
    "CONTINUAL_CLIP_CIFAR100_ORDER": "orders",
    "resolve_order": "orders",
    "seeded_permutation": "orders",
    "Benchmark": "protocol",
    "ClassInfo": "protocol",
    "EvalSplit": "protocol",
    "SampleSet": "protocol",
    "Task": "protocol",
    "class_incremental": "protocol",
    "domain_incremental": "protocol",
    "few_shot_class_incremental": "protocol",
    "multi_domain": "protocol",
    "BenchmarkSpec": "registry",
    "DatasetSpec": "registry",
    "list_benchmarks": "registry",
    "load_benchmark": "registry",
    "load_benchmark_spec": "registry",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
