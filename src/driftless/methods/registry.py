"""Methods by name. A method module registers its class with :func:`register_method`; user code can
do the same (``driftless run --import my_module``)."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import TypeAdapter, ValidationError

from driftless.errors import ConfigError, format_validation_error
from driftless.methods.base import Method, MethodConfig

if TYPE_CHECKING:
    from driftless.config import MethodVariant

_METHODS: dict[str, type] = {}


def register_method(cls: type) -> type:
    """Class decorator: make a method available by its ``name``."""
    for attr in ("name", "inputs", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"method class {cls.__name__} lacks the class attribute {attr!r}")
    if cls.inputs not in ("features", "images"):
        raise TypeError(
            f"method {cls.name}: inputs must be 'features' or 'images', not {cls.inputs!r}"
        )
    existing = _METHODS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"method name {cls.name!r} is already taken by {existing.__module__}")
    _METHODS[cls.name] = cls
    return cls


_NOT_METHOD_MODULES = {"base", "registry", "catalog"}


def _load_builtin_methods() -> None:
    # every module of driftless.methods (but base, registry and the parts package) is one method;
    # importing it registers it. Done lazily so that importing driftless stays cheap.
    import driftless.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg and info.name not in _NOT_METHOD_MODULES:
            importlib.import_module(f"driftless.methods.{info.name}")


def available_methods() -> dict[str, type]:
    """Every registered method class by name."""
    _load_builtin_methods()
    return dict(sorted(_METHODS.items()))


def registered_methods() -> dict[str, type]:
    """The method classes registered so far (by ``--import`` or by importing a method module),
    without importing the built-in ones."""
    return dict(sorted(_METHODS.items()))


def method_class(name: str) -> type:
    """The registered class of method ``name``; unknown names raise ConfigError."""
    methods = available_methods()
    if name not in methods:
        raise ConfigError(f"method: unknown method {name!r}; known: {sorted(methods)}")
    return methods[name]


def validate_method_config(
    name: str, values: Mapping[str, Any], where: str | None = None
) -> MethodConfig:
    """The method's typed config from ``values``; errors name the field (``ncm.unseen``, or
    ``<where>.<field>`` for a variant label)."""
    cls = method_class(name)
    try:
        return cls.Config.model_validate(dict(values))
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix=f"{where or name}.")
        raise ConfigError(f"method config: {problems}") from None


_NULL_WORDS = ("none", "null", "~")


def parse_field_value(name: str, field: str, text: str, where: str | None = None) -> Any:
    """``text`` as a value of field ``field`` of method ``name``, parsed by the field's type: a
    number for a number, ``off``/``true`` for a bool, the text itself for a string or a path (so a
    path named ``yes`` stays ``"yes"``), YAML for a list, ``none``/``null`` for None where the field
    allows it. An unknown field or a value its type refuses raises ConfigError naming both."""
    import yaml

    where = where or name
    fields = method_class(name).Config.model_fields
    if field not in fields:
        raise ConfigError(
            f"method {where}: {name} has no field {field!r}; fields: {sorted(fields)}"
        )
    info = fields[field]
    annotation = info.annotation
    adapter = TypeAdapter(Annotated[annotation, *info.metadata] if info.metadata else annotation)
    candidates: list[Any] = [text]
    with contextlib.suppress(yaml.YAMLError):
        candidates.append(yaml.safe_load(text))
    if text.strip().lower() in _NULL_WORDS:
        candidates.append(None)
    first_error = ""
    for candidate in candidates:
        try:
            return adapter.validate_python(candidate)
        except ValidationError as exc:
            first_error = first_error or "; ".join(e["msg"] for e in exc.errors())
    raise ConfigError(f"method {where}: {field}={text!r} is not a valid value ({first_error})")


def variant_values(variant: MethodVariant) -> dict[str, Any]:
    """The typed config values a method variant's label overrides (``calfuse[fusion=none]`` →
    ``{"fusion": "none"}``); the method must exist."""
    method_class(variant.name)
    return {
        field: parse_field_value(variant.name, field, text, where=variant.label)
        for field, text in variant.overrides
    }


def build_method(name: str, values: Mapping[str, Any] | None = None) -> Method:
    """Instantiate method ``name`` with its validated config."""
    config = validate_method_config(name, values or {})
    return method_class(name)(config)
