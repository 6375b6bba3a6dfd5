"""The run configuration: defaults < YAML file < command-line flags < ``--set key=value``.

Validated by pydantic; unknown keys and bad values raise :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import to_jsonable_python

from driftless.errors import ConfigError, format_validation_error
from driftless.metrics import METRIC_ORDER

DEFAULT_BENCHMARK = "world-cil"
DEFAULT_BACKBONE = "tiny-clip"


def default_data_root() -> Path:
    """``$DRIFTLESS_DATA_ROOT`` or ``~/data``."""
    return Path(os.environ.get("DRIFTLESS_DATA_ROOT", "~/data")).expanduser()


def default_cache_dir() -> Path:
    """``$DRIFTLESS_CACHE``, else ``$XDG_CACHE_HOME/driftless`` or ``~/.cache/driftless``."""
    base = os.environ.get("DRIFTLESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "driftless"
    )
    return Path(base).expanduser()


class Reference(BaseModel):
    """Published numbers a run should reproduce (``configs/reproduce/*.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    source: str
    """Where the numbers come from (paper, table, repository file)."""
    metrics: dict[str, float] = Field(min_length=1)
    """Metric name (``avg``, ``last``, ``transfer``, … as in docs/metrics.md) → value in percent."""
    method: str | None = None
    """The run's method the numbers are for; None when the run has a single method."""

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(METRIC_ORDER))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {list(METRIC_ORDER)}")
        return value


LOCATION_FIELDS = ("out", "data_root", "cache_dir")
"""RunConfig fields that say where a run's files are on this machine: results.json leaves them out."""

NON_SEMANTIC_FIELDS = (
    *LOCATION_FIELDS, "num_workers", "threads", "download", "reference",
    "devices", "num_nodes", "strategy", "loggers",
)  # fmt: skip
"""RunConfig fields that say where a run lives, how it is shown or spread over processes, not
what it computes: a checkpoint stays valid when only these change."""


class RunConfig(BaseModel):
    """Everything that defines a run. ``methods = None`` means every registered method."""

    model_config = ConfigDict(extra="forbid")

    benchmark: str = DEFAULT_BENCHMARK
    methods: list[str] | None = None
    backbone: str = DEFAULT_BACKBONE
    seed: int = 0
    out: Path | None = None
    data_root: Path = Field(default_factory=default_data_root)
    cache_dir: Path = Field(default_factory=default_cache_dir)
    accelerator: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "32-true"
    """Lightning Fabric precision: fp32, bf16/fp16 autocast with fp32 weights, or bf16 weights.
    Part of the feature-store key when not fp32 (the features differ). TF32 matmuls are enabled on
    Ampere or newer GPUs whenever the precision is not ``32-true``."""
    devices: int = Field(default=1, ge=1)
    """Processes per node (GPUs, or CPU processes with ``accelerator: cpu``); see docs/scaling.md."""
    num_nodes: int = Field(default=1, ge=1)
    """Nodes of a multi-node run (launched by SLURM ``srun`` or ``torchrun``)."""
    strategy: Literal["auto", "ddp"] = "auto"
    """Fabric strategy; ``auto`` is DDP whenever there is more than one process."""
    batch_size: int = Field(default=256, ge=1)
    num_workers: int | None = Field(default=None, ge=0)
    """Image-decoding processes per device (None: 0 on a CPU, where workers compete with the
    model for the same cores; on a GPU, the CPU cores per device, at most 8)."""
    threads: int | None = Field(default=None, ge=1)
    """Threads of every compute pool for the run: torch's and each BLAS/OpenMP library's (numpy's
    and scipy's OpenBLAS, through threadpoolctl), restored afterwards (None: the libraries' own
    defaults, one per core). On a CPU shared with other jobs, fewer threads than cores avoids
    threads spinning while they wait for a core."""
    eval_future: bool = True
    """Evaluate blocks not yet learned over all classes after each task (needed for CI-Transfer)."""
    download: bool = False
    """Allow fetching a Hugging Face backbone that is not in the local cache."""
    method_config: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-method hyper-parameters by method name, e.g. ``{ncm: {unseen: text}}``."""
    reference: Reference | None = None
    """Published numbers this run should reproduce; ``driftless run`` prints them beside ours."""
    loggers: list[Literal["csv", "tensorboard", "wandb"]] = Field(default_factory=lambda: ["csv"])
    """Where training losses and per-task metrics go, under ``<out>/logs/``: Lightning's CSV
    logger, TensorBoard, Weights & Biases (the last two need their package); [] for none."""

    @field_validator("methods")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("at least one method is needed")
            if len(set(value)) != len(value):
                raise ValueError(f"methods repeat: {value}")
        return value

    def resolved_methods(self) -> list[str]:
        """The methods to run: the configured list, or every registered method except those that
        opt out of the default run (``in_default_run = False``: too slow for a CPU demo)."""
        from driftless.methods.registry import available_methods

        if self.methods is not None:
            return list(self.methods)
        return [n for n, cls in available_methods().items() if getattr(cls, "in_default_run", True)]

    def method_values(self, label: str) -> tuple[str, dict[str, Any]]:
        """The registered method of ``label`` and its config values: the run's ``method_config``
        for that method, then the label's own overrides (``calfuse[fusion=none]``) on top."""
        from driftless.methods.registry import variant_values

        variant = parse_method_label(label)
        return variant.name, {
            **self.method_config.get(variant.name, {}),
            **variant_values(variant),
        }

    def validate_methods(self) -> None:
        """Check method names, labels and their configs (names the field of any bad value)."""
        from driftless.methods.registry import method_class, validate_method_config

        for name in self.method_config:
            method_class(name)
        for label in self.resolved_methods():
            name, values = self.method_values(label)
            validate_method_config(name, values, where=label)


@dataclass(frozen=True)
class MethodVariant:
    """A method as named on the command line: ``calfuse`` or a variant such as
    ``calfuse[calibration=off,fusion=none]`` (an ablation: the method with some config fields
    overridden), reported under exactly that label."""

    label: str
    """The name as written; the key of the method in results.json, metrics.csv and the plots."""
    name: str
    """The registered method."""
    overrides: tuple[tuple[str, str], ...] = ()
    """(field, value as written) pairs; :func:`driftless.methods.registry.variant_values` parses
    each value by its field's type."""


def _split_top_level(text: str) -> list[str]:
    """``text`` split at commas outside brackets and quotes (a value may be a list ``[1,2]``)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[({":
            depth += 1
        elif char in "])}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_method_label(label: str) -> MethodVariant:
    """``name`` or ``name[field=value,...]`` → :class:`MethodVariant`; a malformed label raises
    ConfigError naming it."""
    text = label.strip()
    if "[" not in text:
        return MethodVariant(text, text)
    name, _, rest = text.partition("[")
    if not rest.endswith("]") or not name.strip():
        raise ConfigError(
            f"method {label!r}: expected NAME[field=value,...], e.g. calfuse[fusion=none]"
        )
    overrides: dict[str, str] = {}
    for item in _split_top_level(rest[:-1]):
        field, eq, value = item.partition("=")
        field = field.strip()
        if not eq or not field:
            raise ConfigError(f"method {label!r}: {item.strip()!r} is not field=value")
        if field in overrides:
            raise ConfigError(f"method {label!r}: field {field!r} is given twice")
        overrides[field] = value.strip()
    return MethodVariant(text, name.strip(), tuple(overrides.items()))


def label_file_stem(label: str) -> str:
    """A file name for a method label: the label itself when it is safe in a file name on every
    system, else the label with the unsafe characters replaced and a short hash (so two labels
    never share a checkpoint)."""
    safe = re.sub(r"[^A-Za-z0-9._=,+@\[\]-]", "_", label)
    if safe == label:
        return label
    return f"{safe}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


def load_yaml_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML run configuration (a mapping); errors name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings. ``<method>.<field>=v`` is short for
    ``method_config.<method>.<field>=v`` and its value is parsed by the field's type (a path or a
    string stays the text given, even ``yes``: ``--set moder.hub_path=runs/cil``); other values,
    and values the field's type refuses (left for validation to report), are parsed as YAML."""
    from driftless.methods.registry import available_methods, parse_field_value

    methods = available_methods()
    data = {**data}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        path = [p for p in key.strip().split(".") if p]
        if not path:
            raise ConfigError(f"--set {item!r}: empty key")
        if path[0] in methods:
            path = ["method_config", *path]
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if len(path) == 3 and path[0] == "method_config" and path[1] in methods:
            with contextlib.suppress(ConfigError):
                typed = parse_field_value(path[1], path[2], raw)
                value = to_jsonable_python(typed)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, Mapping) else {}
            node = child
        node[path[-1]] = value
    return data


def build_run_config(data: Mapping[str, Any]) -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig` (methods and their configs included)."""
    try:
        config = RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"config: {format_validation_error(exc)}") from None
    config.validate_methods()
    return config
