"""Oxford Flowers102 as ``torchvision.datasets.Flowers102`` reads it: ``flowers-102/setid.mat``
holds the image ids of each split (``trnid``, ``valid``, ``tstid``), ``imagelabels.mat`` the label
(1..102) of every image id, images are ``jpg/image_<id:05d>.jpg``. Labels are shifted to 0..101;
the class names are ZSCL's hand-written list (``assets/classnames.json``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from driftless.data.catalog import resolve_templates, zscl_class_names
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import files_split, find_folder, malformed, read_mat

NAME = "flowers102"
_SET_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


def _split(folder: Path, ids: np.ndarray, labels: np.ndarray) -> Split:
    if len(ids) and (ids.min() < 1 or ids.max() > len(labels)):
        raise malformed(
            NAME, folder / "setid.mat", f"image ids outside 1..{len(labels)} of imagelabels.mat"
        )
    paths = [folder / "jpg" / f"image_{int(i):05d}.jpg" for i in ids]
    return files_split(paths, labels[ids - 1] - 1, folder)


def flowers102(
    root: str | os.PathLike[str],
    train_split: Literal["train", "trainval"] = "train",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """Flowers102: 102 classes, ``train`` 1,020 images (ZSCL's choice; ``trainval`` 2,040) and
    ``test`` 6,149; ZSCL's class names and template."""
    folder = find_folder(NAME, root, ["flowers-102", "."], "setid.mat")
    set_ids = read_mat(NAME, folder / "setid.mat", list(_SET_KEYS.values()))
    labels = np.atleast_1d(read_mat(NAME, folder / "imagelabels.mat", ["labels"])["labels"]).astype(
        np.int64
    )
    names = zscl_class_names(NAME)
    if len(labels) and (labels.min() < 1 or labels.max() > len(names)):
        raise malformed(NAME, folder / "imagelabels.mat", f"labels outside 1..{len(names)}")

    def ids(split: str) -> np.ndarray:
        """Image ids of one split of setid.mat."""
        return np.atleast_1d(set_ids[_SET_KEYS[split]]).astype(np.int64)

    train_ids = ids("train")
    if train_split == "trainval":
        train_ids = np.concatenate([train_ids, ids("val")])
    splits = {
        "train": _split(folder, train_ids, labels),
        "test": _split(folder, ids("test"), labels),
    }
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
