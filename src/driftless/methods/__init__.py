"""Continual-learning methods behind one protocol (:class:`Method`), discoverable by name.

Names are imported on first use (PEP 562), so that ``driftless list methods`` can read the catalog
(:mod:`driftless.methods.catalog`) without importing torch.
"""

from __future__ import annotations

from driftless.lazy import lazy_exports

_WHERE = {
    "Context": "base",
    "LabelSpace": "base",
    "Method": "base",
    "MethodBase": "base",
    "MethodConfig": "base",
    "TaskData": "base",
    "available_methods": "registry",
    "build_method": "registry",
    "method_class": "registry",
    "register_method": "registry",
    "validate_method_config": "registry",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
