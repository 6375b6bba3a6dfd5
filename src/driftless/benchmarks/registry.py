"""Named benchmarks, each a YAML spec validated by pydantic (``benchmarks/specs/*.yaml``)."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from driftless.benchmarks.protocol import (
    Benchmark,
    class_incremental,
    domain_incremental,
    few_shot_class_incremental,
    multi_domain,
)
from driftless.data.registry import build_dataset
from driftless.data.sessions import read_cec_sessions
from driftless.errors import ConfigError


class DatasetSpec(BaseModel):
    """A dataset by factory name (see ``driftless.data.DATASET_FACTORIES``) and its parameters."""

    model_config = ConfigDict(extra="forbid")
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    templates: list[str] | None = None  # overrides the dataset's own prompt templates


class BenchmarkSpec(BaseModel):
    """A benchmark as data. ``class-incremental`` takes exactly one dataset and ``base``,
    ``increment``, ``order``; ``few-shot class-incremental`` takes one dataset, ``base``,
    ``increment`` (the ways), ``shots`` and optionally ``session_lists``; ``multi-domain`` takes
    the datasets in task order; ``domain-incremental`` takes one domain dataset, ``domains`` in task
    order and optionally ``test_domains``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    protocol: Literal[
        "class-incremental", "few-shot class-incremental", "multi-domain", "domain-incremental"
    ]
    datasets: list[DatasetSpec] = Field(min_length=1)
    base: int = 0
    increment: int | list[int] | None = None
    order: str | list[int] = "identity"
    shots: int | None = Field(default=None, ge=1)
    seed: int = 0
    domains: list[str] | None = None
    """domain-incremental: the dataset's domains, one per task, in task order."""
    test_domains: list[str] | None = None
    """domain-incremental: the domains evaluated after every task (default: ``domains``)."""
    session_lists: str | None = None
    """few-shot class-incremental: the folder of CEC's ``session_<k>.txt`` lists under
    ``<data-root>/index_list/`` (``cifar100``, ``mini_imagenet``, ``cub200``); None draws the shots
    with ``seed``."""
    method_config: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-method settings suited to this benchmark (e.g. a smaller random-feature width for a
    128-d backbone); a run's own ``method_config`` overrides them field by field."""

    def build(self, data_root: Path) -> Benchmark:
        """Build the benchmark, reading its datasets under ``data_root``."""
        benchmark = self._build_protocol(data_root)
        return replace(benchmark, method_defaults=self.method_config)

    def _build_protocol(self, data_root: Path) -> Benchmark:
        built = []
        for i, spec in enumerate(self.datasets):
            ds = build_dataset(
                spec.type, spec.params, data_root, where=f"{self.name}.datasets[{i}]"
            )
            built.append(ds.with_templates(spec.templates) if spec.templates else ds)
        if self.protocol != "multi-domain" and len(built) != 1:
            raise ConfigError(
                f"{self.name}.datasets: {self.protocol} takes one dataset, got {len(built)}"
            )
        if self.protocol == "domain-incremental":
            if not self.domains:
                raise ConfigError(f"{self.name}.domains: required for domain-incremental")
            return domain_incremental(
                built[0],
                self.domains,
                self.test_domains,
                name=self.name,
                shots=self.shots,
                seed=self.seed,
                description=self.description,
            )
        if self.protocol == "few-shot class-incremental":
            if not isinstance(self.increment, int) or self.shots is None:
                raise ConfigError(
                    f"{self.name}: few-shot class-incremental needs increment (the ways, one "
                    "number) and shots"
                )
            sessions = (
                read_cec_sessions(data_root, self.session_lists, built[0])
                if self.session_lists
                else None
            )
            return few_shot_class_incremental(
                built[0],
                self.base,
                self.increment,
                self.shots,
                self.order,
                sessions=sessions,
                name=self.name,
                seed=self.seed,
                description=self.description,
            )
        if self.protocol == "class-incremental":
            if self.increment is None:
                raise ConfigError(f"{self.name}.increment: required for class-incremental")
            return class_incremental(
                built[0],
                self.base,
                self.increment,
                self.order,
                name=self.name,
                shots=self.shots,
                seed=self.seed,
                description=self.description,
            )
        return multi_domain(
            built, name=self.name, shots=self.shots, seed=self.seed, description=self.description
        )


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field by its dotted path."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"{prefix}{loc}: {err['msg']}")
    return "; ".join(lines)


def parse_benchmark_spec(data: dict[str, Any], source: str) -> BenchmarkSpec:
    """Validate a spec mapping; errors name the field and the source."""
    try:
        return BenchmarkSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"benchmark spec {source}: {format_validation_error(exc)}") from None


def _builtin_specs() -> dict[str, BenchmarkSpec]:
    specs = {}
    folder = resources.files("driftless.benchmarks") / "specs"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            spec = parse_benchmark_spec(yaml.safe_load(entry.read_text()), entry.name)
            specs[spec.name] = spec
    return specs


def list_benchmarks() -> dict[str, BenchmarkSpec]:
    """Every registered benchmark spec by name."""
    return _builtin_specs()


def with_order(spec: BenchmarkSpec, order: str) -> BenchmarkSpec:
    """``spec`` with another class order, named ``<name>@<order>`` (class-incremental only)."""
    if (
        spec.protocol not in ("class-incremental", "few-shot class-incremental")
        or spec.session_lists
    ):
        raise ConfigError(
            f"benchmark: {spec.name}@{order}: only class-incremental benchmarks without fixed "
            "session lists take a class order"
        )
    return spec.model_copy(update={"order": order, "name": f"{spec.name}@{order}"})


def load_benchmark_spec(name_or_path: str) -> BenchmarkSpec:
    """A registered benchmark by name, or a spec from a YAML file path. ``<name>@<order>``
    (e.g. ``cifar100-b0inc10@seed1993``) is the benchmark with another class order: any order
    name of :func:`driftless.benchmarks.resolve_order` (``seed1993``, ``seed:<n>``,
    ``identity``, ``continual-clip``)."""
    base, at, order = name_or_path.rpartition("@")
    if at and base and order and "/" not in order and not Path(name_or_path).exists():
        return with_order(load_benchmark_spec(base), order)
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"benchmark: spec file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"benchmark spec {path} is not valid YAML: {exc}") from None
        return parse_benchmark_spec(data, str(path))
    specs = _builtin_specs()
    if name_or_path not in specs:
        raise ConfigError(f"benchmark: unknown benchmark {name_or_path!r}; known: {sorted(specs)}")
    return specs[name_or_path]


def load_benchmark(name_or_path: str, data_root: Path) -> Benchmark:
    """Build a named (or YAML-file) benchmark, reading datasets under ``data_root``."""
    return load_benchmark_spec(name_or_path).build(Path(data_root).expanduser())
