"""The built-in methods as ``driftless list methods`` shows them, read from the method modules'
source without importing them.

Importing a method module imports torch (and some import transformers), which costs seconds to tens
of seconds on a busy machine; listing what exists should not. Each built-in method module is parsed
(``ast``) for the classes decorated with ``@register_method`` and their ``name``, ``inputs`` and
``in_default_run`` class attributes and docstring. tests/test_cli.py checks that this agrees with
the registry itself (:func:`driftless.methods.registry.available_methods`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

_NOT_METHOD_MODULES = {"__init__", "base", "registry", "catalog"}


@dataclass(frozen=True)
class MethodEntry:
    """One registered method as listed: its name, what it consumes and a one-line summary."""

    name: str
    inputs: str
    summary: str
    in_default_run: bool = True


@dataclass
class _ParsedClass:
    attributes: dict[str, object]
    bases: list[str]
    doc: str
    module_doc: str
    registered: bool


def _class_attributes(node: ast.ClassDef) -> dict[str, object]:
    values: dict[str, object] = {}
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            target, value = statement.target.id, statement.value
        elif (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            target, value = statement.targets[0].id, statement.value
        else:
            continue
        if isinstance(value, ast.Constant):
            values[target] = value.value
    return values


def _base_name(base: ast.expr) -> str:
    """``Base`` of a base class written ``Base`` or ``Base[Config]``."""
    if isinstance(base, ast.Subscript):
        base = base.value
    return base.id if isinstance(base, ast.Name) else ""


def _is_register(decorator: ast.expr) -> bool:
    name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(decorator, "id", "")
    return name == "register_method"


def _summary(doc: str) -> str:
    return (doc.strip().splitlines() or [""])[0]


def builtin_method_entries() -> list[MethodEntry]:
    """Every built-in method, sorted by name, from the source of ``driftless/methods/*.py``."""
    classes: dict[str, _ParsedClass] = {}
    here = Path(__file__).parent
    # the parts are parsed too: a method may inherit ``inputs`` from a shared base class there
    for path in sorted(here.glob("parts/*.py")) + sorted(here.glob("*.py")):
        if path.stem in _NOT_METHOD_MODULES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_doc = ast.get_docstring(tree) or ""
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = _ParsedClass(
                    _class_attributes(node),
                    [_base_name(b) for b in node.bases],
                    ast.get_docstring(node) or "",
                    module_doc,
                    any(_is_register(d) for d in node.decorator_list),
                )

    def lookup(cls: _ParsedClass, attribute: str, default: object) -> object:
        """A class attribute, inherited from a base class parsed here when not set on the class."""
        if attribute in cls.attributes:
            return cls.attributes[attribute]
        for base in cls.bases:
            if base in classes:
                return lookup(classes[base], attribute, default)
        return default

    entries = [
        MethodEntry(
            str(lookup(cls, "name", "")),
            str(lookup(cls, "inputs", "")),
            _summary(cls.doc or cls.module_doc),
            bool(lookup(cls, "in_default_run", True)),
        )
        for cls in classes.values()
        if cls.registered
    ]
    return sorted(entries, key=lambda e: e.name)


def entry_of(cls: type) -> MethodEntry:
    """The listing of a registered (imported) method class, e.g. a user's ``--import``."""
    import sys

    doc = cls.__doc__ or sys.modules[cls.__module__].__doc__ or ""
    return MethodEntry(
        cls.name, cls.inputs, _summary(doc), bool(getattr(cls, "in_default_run", True))
    )
