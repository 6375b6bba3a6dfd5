"""Continual-learning methods behind one protocol (:class:`Method`), discoverable by name.

Names are imported on first use (PEP 562), so that ``driftless list methods`` can read the catalog
(:mod:`driftless.methods.catalog`) without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Context": "base",
    "LabelSpace": "base",
    "Method": "base",
    "MethodConfig": "base",
    "TaskData": "base",
    "available_methods": "registry",
    "build_method": "registry",
    "method_class": "registry",
    "register_method": "registry",
    "validate_method_config": "registry",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
