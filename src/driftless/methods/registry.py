"""Methods by name. A method module registers its class with :func:`register_method`; user code can
do the same (``driftless run --import my_module``)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from driftless.errors import ConfigError
from driftless.methods.base import Method, MethodConfig

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


_NOT_METHOD_MODULES = {"base", "registry"}


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


def method_class(name: str) -> type:
    """The registered class of method ``name``; unknown names raise ConfigError."""
    methods = available_methods()
    if name not in methods:
        raise ConfigError(f"method: unknown method {name!r}; known: {sorted(methods)}")
    return methods[name]


def validate_method_config(name: str, values: Mapping[str, Any]) -> MethodConfig:
    """The method's typed config from ``values``; errors name the field (``ncm.unseen``)."""
    cls = method_class(name)
    try:
        return cls.Config.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(
            f"{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"method config: {problems}") from None


def build_method(name: str, values: Mapping[str, Any] | None = None) -> Method:
    """Instantiate method ``name`` with its validated config."""
    config = validate_method_config(name, values or {})
    return method_class(name)(config)
