"""Continual-learning methods behind one protocol (:class:`Method`), discoverable by name."""

from driftless.methods.base import Context, LabelSpace, Method, MethodConfig, TaskData
from driftless.methods.registry import (
    available_methods,
    build_method,
    method_class,
    register_method,
    validate_method_config,
)

__all__ = [
    "Context",
    "LabelSpace",
    "Method",
    "MethodConfig",
    "TaskData",
    "available_methods",
    "build_method",
    "method_class",
    "register_method",
    "validate_method_config",
]
