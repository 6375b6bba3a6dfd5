"""FGVC-Aircraft at the variant level (100 classes), as ``torchvision.datasets.FGVCAircraft`` reads
the ``fgvc-aircraft-2013b`` archive: class names from ``data/variants.txt`` (one per line, in label
order); each split from ``data/images_variant_<split>.txt``, lines ``<image id> <variant name>``
(the name may hold spaces), images ``data/images/<image id>.jpg``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import files_split, find_folder, malformed, read_lines

NAME = "fgvc-aircraft"


def _split(folder: Path, split: str, class_index: dict[str, int]) -> Split:
    index_file = folder / "data" / f"images_variant_{split}.txt"
    paths, labels = [], []
    for number, line in enumerate(read_lines(NAME, index_file), 1):
        image_id, _, variant = line.partition(" ")
        if variant not in class_index:
            raise malformed(NAME, index_file, f"line {number}: unknown variant {variant!r}")
        paths.append(folder / "data" / "images" / f"{image_id}.jpg")
        labels.append(class_index[variant])
    return files_split(paths, labels, folder)


def fgvc_aircraft(
    root: str | os.PathLike[str],
    train_split: Literal["train", "trainval"] = "train",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """FGVC-Aircraft variants: 100 classes, ``train`` 3,334 images (ZSCL's choice; ``trainval``
    6,667) and ``test`` 3,333. Names as in variants.txt; templates: ZSCL's."""
    folder = find_folder(NAME, root, ["fgvc-aircraft-2013b", "."], "data/variants.txt")
    variants = read_lines(NAME, folder / "data" / "variants.txt")
    class_index = {name: i for i, name in enumerate(variants)}
    splits = {"train": _split(folder, train_split, class_index)}
    splits["test"] = _split(folder, "test", class_index)
    names = [v.replace("_", " ") for v in variants]
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
