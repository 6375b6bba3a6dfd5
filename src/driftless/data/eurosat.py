"""EuroSAT (RGB) as ``torchvision.datasets.EuroSAT`` reads it: an ImageFolder over
``eurosat/2750/<class>/<image>.jpg`` (sorted class folders, sorted files), split 80/20 as ZSCL does.
The class names are ZSCL's hand-written ones (``assets/classnames.json``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from driftless.data.catalog import resolve_templates, zscl_class_names
from driftless.data.dataset import Dataset
from driftless.data.ondisk import class_folders, find_folder, image_files, malformed
from driftless.data.splits import random_train_test

NAME = "eurosat"


def eurosat(root: str | os.PathLike[str], templates: str | Sequence[str] | None = None) -> Dataset:
    """EuroSAT RGB: 10 classes, 27,000 images split 80/20 by ``random_split`` with seed 42 over
    torchvision's order (21,600 train / 5,400 test), ZSCL's class names and templates."""
    folder = find_folder(NAME, root, ["eurosat/2750", "2750", "."], "AnnualCrop")
    pairs = zscl_class_names(NAME)
    expected = [f for f, _ in pairs]
    found = class_folders(folder)
    if found != expected:
        raise malformed(NAME, folder, f"expected the class folders {expected}, found {found}")
    paths, labels = [], []
    for label, class_folder in enumerate(found):
        files = image_files(folder / class_folder)
        paths.extend(files)
        labels.extend([label] * len(files))
    splits = random_train_test(paths, labels, folder)
    names = [name for _, name in pairs]
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
