"""Whose hyper-parameters a run uses. Some method defaults suit only the bundled tiny models and the
embedded benchmarks (e.g. image fine-tuning at lr 1e-4 for 60 iterations per task); a real
benchmark's spec carries the published settings instead, where a paper gives them
(docs/paper-settings.md). Running a real benchmark with a tiny-model default left in place gets
one warning naming the methods and fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftless.benchmarks.registry import BenchmarkSpec

#: dataset types that are generated or bundled (the data the tiny models were tuned on)
EMBEDDED_DATASET_PREFIXES = ("world-", "toy-", "sklearn-")


def is_real_benchmark(spec: BenchmarkSpec) -> bool:
    """Whether any of the benchmark's datasets is a real one read from the data root."""
    return any(not d.type.startswith(EMBEDDED_DATASET_PREFIXES) for d in spec.datasets)


def tiny_model_settings(
    spec: BenchmarkSpec, methods: list[str], method_config: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Per method, the fields left at a default that suits only the tiny models (a config class
    lists them in ``TINY_MODEL_DEFAULTS``): set neither by the benchmark spec nor by the run."""
    from driftless.methods.registry import method_class

    left: dict[str, list[str]] = {}
    for name in methods:
        fields = getattr(method_class(name).Config, "TINY_MODEL_DEFAULTS", ())
        given = {**spec.method_config.get(name, {}), **method_config.get(name, {})}
        missing = [f for f in fields if f not in given]
        if missing:
            left[name] = missing
    return left


def tiny_settings_warning(
    spec: BenchmarkSpec, methods: list[str], method_config: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """One warning line when a real benchmark runs with tiny-model defaults; None otherwise."""
    if not is_real_benchmark(spec):
        return None
    left = tiny_model_settings(spec, methods, method_config)
    if not left:
        return None
    listed = "; ".join(f"{m}: {', '.join(fields)}" for m, fields in left.items())
    return (
        f"warning: {spec.name} is a real benchmark, but these settings are the tiny models' "
        f"defaults, not a paper's ({listed}); set them with --set METHOD.FIELD=VALUE or a "
        "config (docs/paper-settings.md lists the published ones)"
    )
