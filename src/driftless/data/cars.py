"""Stanford Cars in the layout ``torchvision.datasets.StanfordCars`` expects: ``stanford_cars/``
with ``devkit/cars_meta.mat`` (``class_names``: the 196 names in label order),
``devkit/cars_train_annos.mat`` and ``cars_test_annos_withlabels.mat`` (``annotations``: a struct
array whose records hold ``fname`` and ``class`` 1..196), images in ``cars_train/`` and
``cars_test/``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import files_split, find_folder, malformed, read_mat

NAME = "stanford-cars"
_SPLITS = {
    "train": ("devkit/cars_train_annos.mat", "cars_train"),
    "test": ("cars_test_annos_withlabels.mat", "cars_test"),
}


def _split(folder: Path, split: str, num_classes: int) -> Split:
    annotations_file, images = _SPLITS[split]
    path = folder / annotations_file
    records = np.atleast_1d(read_mat(NAME, path, ["annotations"])["annotations"])
    try:
        files = [str(r["fname"]) for r in records]
        labels = [int(r["class"]) - 1 for r in records]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise malformed(NAME, path, f"annotations lack 'fname' or 'class' ({exc})") from exc
    if labels and (min(labels) < 0 or max(labels) >= num_classes):
        raise malformed(NAME, path, f"classes outside 1..{num_classes}")
    return files_split([folder / images / f for f in files], labels, folder)


def stanford_cars(
    root: str | os.PathLike[str], templates: str | Sequence[str] | None = None
) -> Dataset:
    """Stanford Cars: 196 classes, 8,144 train / 8,041 test images; names from cars_meta.mat;
    ZSCL's templates."""
    folder = find_folder(NAME, root, ["stanford_cars", "."], "devkit/cars_meta.mat")
    meta = read_mat(NAME, folder / "devkit" / "cars_meta.mat", ["class_names"])
    names = [str(n).replace("_", " ") for n in np.atleast_1d(meta["class_names"])]
    splits = {split: _split(folder, split, len(names)) for split in _SPLITS}
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
