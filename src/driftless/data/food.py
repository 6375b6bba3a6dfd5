"""Food-101 as ``torchvision.datasets.Food101`` reads it: ``food-101/meta/<split>.json`` maps each
class to its image paths (``<class>/<id>``, without ``.jpg``); classes are the sorted keys, samples
come class by class in the file's order; images are ``images/<class>/<id>.jpg``. Names: underscores
read as spaces (ZSCL)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import files_split, find_folder, malformed, read_json

NAME = "food101"


def _metadata(folder: Path, split: str) -> dict[str, list[str]]:
    path = folder / "meta" / f"{split}.json"
    content = read_json(NAME, path)
    if not isinstance(content, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in content.values()
    ):
        raise malformed(NAME, path, "expected a mapping of class name to a list of image paths")
    return content


def _split(folder: Path, metadata: dict[str, list[str]], classes: list[str]) -> Split:
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for cls, relative_paths in metadata.items():
        paths.extend(folder / "images" / f"{p}.jpg" for p in relative_paths)
        labels.extend([index[cls]] * len(relative_paths))
    return files_split(paths, labels, folder)


def food101(root: str | os.PathLike[str], templates: str | Sequence[str] | None = None) -> Dataset:
    """Food-101: 101 classes, 75,750 train / 25,250 test images; ZSCL's template."""
    folder = find_folder(NAME, root, ["food-101", "."], "meta/train.json")
    train, test = _metadata(folder, "train"), _metadata(folder, "test")
    classes = sorted(train)
    if sorted(test) != classes:
        raise malformed(NAME, folder / "meta", "train.json and test.json name different classes")
    splits = {"train": _split(folder, train, classes), "test": _split(folder, test, classes)}
    names = [c.replace("_", " ") for c in classes]
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
