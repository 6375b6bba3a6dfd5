"""The Describable Textures Dataset as ``torchvision.datasets.DTD`` reads it: split files
``dtd/labels/{train,val,test}<partition>.txt`` with lines ``<class>/<file>``, images
``dtd/images/<class>/<file>``, classes the sorted class names of the split file.

ZSCL trains on ``train1`` alone (torchvision's ``split="train"``; ``val1`` is unused) and tests on
``test1``; ``train_split="trainval"`` trains on ``train1`` + ``val1`` instead."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import files_split, find_folder, malformed, read_lines
from driftless.errors import ConfigError

NAME = "dtd"


def _entries(folder: Path, split: str, partition: int) -> list[tuple[str, str]]:
    index_file = folder / "labels" / f"{split}{partition}.txt"
    entries = []
    for number, line in enumerate(read_lines(NAME, index_file), 1):
        cls, slash, file = line.partition("/")
        if not slash or not file:
            raise malformed(
                NAME, index_file, f"line {number}: expected <class>/<file>, got {line!r}"
            )
        entries.append((cls, file))
    return entries


def _split(folder: Path, entries: list[tuple[str, str]], classes: list[str]) -> Split:
    index = {c: i for i, c in enumerate(classes)}
    paths = [folder / "images" / cls / file for cls, file in entries]
    return files_split(paths, [index[cls] for cls, _ in entries], folder)


def dtd(
    root: str | os.PathLike[str],
    partition: int = 1,
    train_split: Literal["train", "trainval"] = "train",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """DTD, 47 texture classes; partition 1 by default: ``train`` 1,880 images (``trainval``
    3,760), ``test`` 1,880. Names are the class folders; templates: ZSCL's."""
    if not 1 <= partition <= 10:
        raise ConfigError(f"partition: DTD has partitions 1..10, got {partition}")
    folder = find_folder(NAME, root, ["dtd/dtd", "dtd", "."], f"labels/train{partition}.txt")
    train = _entries(folder, "train", partition)
    if train_split == "trainval":
        train += _entries(folder, "val", partition)
    test = _entries(folder, "test", partition)
    classes = sorted({cls for cls, _ in train})
    unknown = sorted({cls for cls, _ in test} - set(classes))
    if unknown:
        raise malformed(
            NAME, folder / "labels", f"test{partition}.txt has classes {unknown[:5]} not in train"
        )
    splits = {"train": _split(folder, train, classes), "test": _split(folder, test, classes)}
    names = [c.replace("_", " ") for c in classes]
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
