"""Caltech101 as ``torchvision.datasets.Caltech101`` reads it, split 80/20 as ZSCL does.

torchvision's sample order: the category folders of ``caltech101/101_ObjectCategories`` sorted by
name (Python's ``sorted``, so ``Faces`` … ``Motorbikes`` come before ``accordion``), without
``BACKGROUND_Google``; within a category ``image_0001.jpg``, ``image_0002.jpg``, … The 101 class
names are ZSCL's hand-written ones (``assets/classnames.json``)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from driftless.data.catalog import resolve_templates, zscl_class_names
from driftless.data.dataset import Dataset
from driftless.data.ondisk import class_folders, find_folder, malformed
from driftless.data.splits import random_train_test

NAME = "caltech101"
BACKGROUND = "BACKGROUND_Google"
_IMAGE_NAME = re.compile(r"image_(\d{4})\.jpg")


def caltech101_samples(categories_folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """(paths, labels, category folders) in torchvision's enumeration order."""
    expected = [folder for folder, _ in zscl_class_names(NAME)]
    found = [c for c in class_folders(categories_folder) if c != BACKGROUND]
    if found != expected:
        absent = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        raise malformed(
            NAME,
            categories_folder,
            f"expected the 101 category folders; missing {absent[:5]}, unexpected {extra[:5]}",
        )
    paths, labels = [], []
    for label, category in enumerate(found):
        numbers = sorted(
            int(m.group(1))
            for p in (categories_folder / category).iterdir()
            if (m := _IMAGE_NAME.fullmatch(p.name))
        )
        if numbers != list(range(1, len(numbers) + 1)):
            raise malformed(
                NAME,
                categories_folder / category,
                "images must be numbered image_0001.jpg, image_0002.jpg, … without gaps",
            )
        paths.extend(categories_folder / category / f"image_{i:04d}.jpg" for i in numbers)
        labels.extend([label] * len(numbers))
    return paths, labels, found


def caltech101(
    root: str | os.PathLike[str], templates: str | Sequence[str] | None = None
) -> Dataset:
    """Caltech101: 101 classes, 8,677 images split 80/20 by ``random_split`` with seed 42 over
    torchvision's order (6,941 train / 1,736 test), ZSCL's class names and templates."""
    folder = find_folder(NAME, root, ["caltech101", "."], "101_ObjectCategories")
    categories = folder / "101_ObjectCategories"
    paths, labels, _ = caltech101_samples(categories)
    names = [name for _, name in zscl_class_names(NAME)]
    splits = random_train_test(paths, labels, folder)
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
