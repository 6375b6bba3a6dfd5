"""Named benchmarks, each a YAML spec validated by pydantic (``benchmarks/specs/*.yaml``).

Which parts of a benchmark a run's seed changes is the spec's to say: ``order: run-seed`` draws the
class order from the run seed as PILOT does (``numpy.random.seed(1993 + seed); permutation(n)``:
run seed 0 is PILOT's default order ``seed1993``, seeds 1, 2, … are PILOT's seeds 1994, 1995, …),
and ``seed: run-seed`` draws the generated datasets' images and the few-shot picks with the run
seed itself. The embedded benchmarks (``world-*``, ``toy-*``) do both; a real benchmark
keeps the order its literature fixed unless asked (``cifar100-b0inc10@run-seed``).

This module imports no dataset code (nor torch) until a benchmark is built: ``driftless list``
stays fast.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from driftless.errors import ConfigError, format_validation_error

if TYPE_CHECKING:
    from driftless.benchmarks.protocol import Benchmark

#: the order name and seed value that mean "the run's seed"
RUN_SEED = "run-seed"
#: run seed s orders classes as ``seed:<PILOT_SEED_BASE + s>``: seed 0 is PILOT's seed1993
PILOT_SEED_BASE = 1993


def run_seed_order(run_seed: int) -> str:
    """The class order a ``run-seed`` benchmark takes under ``run_seed``: ``seed:<1993 + s>``."""
    order_seed = PILOT_SEED_BASE + run_seed
    if not 0 <= order_seed < 2**32:
        raise ConfigError(
            f"seed: a run-seed class order needs 1993 + seed in 0..2**32-1 (seed {run_seed})"
        )
    return f"seed:{order_seed}"


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
    """A named order (:func:`driftless.benchmarks.resolve_order`), an explicit permutation, or
    ``run-seed``: the permutation the run seed draws (:func:`run_seed_order`)."""
    shots: int | None = Field(default=None, ge=1)
    seed: int | Literal["run-seed"] = 0
    """Seed of the few-shot picks; ``run-seed``: the run's seed, which then also draws the images of
    every generated dataset whose parameters do not fix a ``seed`` of their own."""
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

    def seed_varies(self) -> tuple[str, ...]:
        """What a run's seed changes in this benchmark: ``class order``, ``images`` (the draw of
        the generated datasets and the few-shot picks); empty when the benchmark is fixed."""
        varies = []
        if self.order == RUN_SEED:
            varies.append("class order")
        if self.seed == RUN_SEED:
            varies.append("images")
        return tuple(varies)

    def build(self, data_root: Path, run_seed: int = 0) -> Benchmark:
        """Build the benchmark, reading its datasets under ``data_root``; ``run_seed`` fills in
        the ``run-seed`` order and seed."""
        benchmark = self._build_protocol(data_root, run_seed)
        return replace(
            benchmark, method_defaults=self.method_config, seed_varies=self.seed_varies()
        )

    def _build_protocol(self, data_root: Path, run_seed: int) -> Benchmark:
        from driftless.benchmarks.protocol import (
            class_incremental,
            domain_incremental,
            few_shot_class_incremental,
            multi_domain,
        )
        from driftless.data.registry import DATASET_FACTORIES, build_dataset
        from driftless.data.sessions import read_cec_sessions

        seed = run_seed if self.seed == RUN_SEED else self.seed
        built = []
        for i, spec in enumerate(self.datasets):
            params = dict(spec.params)
            factory = DATASET_FACTORIES.get(spec.type)
            if (
                self.seed == RUN_SEED
                and "seed" not in params
                and factory is not None
                and "seed" in inspect.signature(factory).parameters
            ):
                params["seed"] = seed
            ds = build_dataset(spec.type, params, data_root, where=f"{self.name}.datasets[{i}]")
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
                seed=seed,
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
                run_seed_order(run_seed) if self.order == RUN_SEED else self.order,
                sessions=sessions,
                name=self.name,
                seed=seed,
                description=self.description,
            )
        if self.protocol == "class-incremental":
            if self.increment is None:
                raise ConfigError(f"{self.name}.increment: required for class-incremental")
            return class_incremental(
                built[0],
                self.base,
                self.increment,
                run_seed_order(run_seed) if self.order == RUN_SEED else self.order,
                name=self.name,
                shots=self.shots,
                seed=seed,
                description=self.description,
            )
        return multi_domain(
            built, name=self.name, shots=self.shots, seed=seed, description=self.description
        )


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


def load_benchmark(name_or_path: str, data_root: Path, run_seed: int = 0) -> Benchmark:
    """Build a named (or YAML-file) benchmark, reading datasets under ``data_root``; ``run_seed``
    is the run's seed, for the parts the spec draws from it (:meth:`BenchmarkSpec.seed_varies`)."""
    return load_benchmark_spec(name_or_path).build(Path(data_root).expanduser(), run_seed)
