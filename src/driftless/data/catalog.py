"""Facts about the real datasets, kept as data files in ``data/assets/``: where each dataset comes
from, its layout and official sizes (``datasets.yaml``), prompt templates (``templates.yaml``),
ImageNet's class names and subsets, and the hand-written class names ZSCL uses.

Files are read on first use (never at import) and cached.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from driftless.errors import ConfigError


def _asset_text(name: str) -> str:
    return (resources.files("driftless.data") / "assets" / name).read_text(encoding="utf-8")


@cache
def _json_asset(name: str) -> dict[str, Any]:
    return json.loads(_asset_text(name))


@cache
def _yaml_asset(name: str) -> dict[str, Any]:
    return yaml.safe_load(_asset_text(name))


@dataclass(frozen=True)
class DatasetInfo:
    """One entry of ``assets/datasets.yaml``."""

    name: str
    title: str
    source: str
    layout: str
    classes: int
    sizes: dict[str, int | None]
    splits: str


def catalog() -> dict[str, DatasetInfo]:
    """Every on-disk dataset driftless reads, by registry name."""
    return {
        name: DatasetInfo(name=name, **entry)
        for name, entry in _yaml_asset("datasets.yaml").items()
    }


def dataset_info(name: str) -> DatasetInfo:
    """The catalog entry of ``name`` (a registry name such as ``sun397``)."""
    return catalog()[name]


def template_sets(dataset: str) -> dict[str, tuple[str, ...]]:
    """The named prompt-template sets of ``dataset``; the first is the reader's default."""
    sets = _yaml_asset("templates.yaml")[dataset]
    return {name: tuple(templates) for name, templates in sets.items()}


def resolve_templates(dataset: str, templates: str | Sequence[str] | None) -> tuple[str, ...]:
    """A template-set name of ``dataset`` (None = its default set), or an explicit list of
    templates, as a tuple of templates."""
    sets = template_sets(dataset)
    if templates is None:
        return next(iter(sets.values()))
    if isinstance(templates, str):
        if templates not in sets:
            raise ConfigError(
                f"templates: {templates!r} is not a template set of {dataset} (known: "
                f"{sorted(sets)}); give a list of templates with one '{{}}' for your own"
            )
        return sets[templates]
    return tuple(templates)


def imagenet_class_names() -> dict[str, str]:
    """WordNet id → the class name OpenAI's CLIP uses, for the 1,000 ImageNet-1k classes, in
    ImageNet's label order."""
    return dict(_json_asset("imagenet_classes.json")["classes"])


def imagenet_subset(name: str) -> list[str]:
    """The WordNet ids of an ImageNet class subset (``imagenet100``, ``imagenet-r``,
    ``imagenet-a``), in label order."""
    return list(_json_asset("imagenet_subsets.json")[name])


def zscl_class_names(dataset: str) -> list[Any]:
    """ZSCL's hand-written class names: ``caltech101`` and ``eurosat`` as [folder, name] pairs,
    ``flowers102`` as names in label order."""
    return list(_json_asset("classnames.json")[dataset])
