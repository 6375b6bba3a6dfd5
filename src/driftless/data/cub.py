"""CUB-200-2011 from its own archive: ``CUB_200_2011/images.txt`` (``<image id> <relative path>``),
``image_class_labels.txt`` (``<image id> <class id 1..200>``), ``train_test_split.txt``
(``<image id> <1 = train, 0 = test>``), ``classes.txt`` (``<class id> <NNN.Name_of_bird>``), images
under ``images/``. Class names: the folder name without its number, underscores as spaces
(``001.Black_footed_Albatross`` → ``Black footed Albatross``).

PILOT and APER instead read a copy pre-split into ``cub/{train,test}/<class folder>/`` (an 80/20 split
of their own, not the official one); ``split="folders"`` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import (
    DatasetMissing,
    class_folders,
    files_split,
    find_folder,
    image_files,
    malformed,
    read_lines,
)
from driftless.errors import ConfigError

NAME = "cub200"


def _id_table(folder: Path, file: str) -> dict[int, str]:
    path = folder / file
    table = {}
    for number, line in enumerate(read_lines(NAME, path), 1):
        key, _, value = line.partition(" ")
        if not key.isdigit() or not value:
            raise malformed(NAME, path, f"line {number}: expected '<id> <value>', got {line!r}")
        table[int(key)] = value.strip()
    return table


def _class_name(folder_name: str) -> str:
    return folder_name.split(".", 1)[-1].replace("_", " ")


def _official(folder: Path) -> tuple[list[str], dict[str, Split]]:
    classes = _id_table(folder, "classes.txt")
    images = _id_table(folder, "images.txt")
    labels = _id_table(folder, "image_class_labels.txt")
    is_train = _id_table(folder, "train_test_split.txt")
    class_ids = sorted(classes)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise malformed(NAME, folder / "classes.txt", "class ids must be 1..N")
    if not set(images) == set(labels) == set(is_train):
        raise malformed(
            NAME,
            folder,
            "images.txt, image_class_labels.txt and train_test_split.txt list different image ids",
        )
    parts: dict[str, tuple[list[Path], list[int]]] = {"train": ([], []), "test": ([], [])}
    for image_id in sorted(images):
        if is_train[image_id] not in ("0", "1") or not labels[image_id].isdigit():
            raise malformed(NAME, folder, f"image {image_id}: bad label or train/test flag")
        label = int(labels[image_id]) - 1
        if not 0 <= label < len(class_ids):
            raise malformed(
                NAME, folder / "image_class_labels.txt", f"image {image_id}: class {label + 1}"
            )
        paths, split_labels = parts["train" if is_train[image_id] == "1" else "test"]
        paths.append(folder / "images" / images[image_id])
        split_labels.append(label)
    names = [_class_name(classes[i]) for i in class_ids]
    return names, {s: files_split(p, y, folder) for s, (p, y) in parts.items()}


def _folders(folder: Path) -> tuple[list[str], dict[str, Split]]:
    classes = class_folders(folder / "train")
    if class_folders(folder / "test") != classes:
        raise malformed(NAME, folder, "train/ and test/ hold different class folders")
    splits = {}
    for split in ("train", "test"):
        paths, labels = [], []
        for label, cls in enumerate(classes):
            files = image_files(folder / split / cls)
            paths.extend(files)
            labels.extend([label] * len(files))
        splits[split] = files_split(paths, labels, folder)
    return [_class_name(c) for c in classes], splits


def cub200(
    root: str | os.PathLike[str],
    split: Literal["auto", "official", "folders"] = "auto",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """CUB-200-2011: 200 bird species; ``official`` = train_test_split.txt (5,994 / 5,794 images),
    ``folders`` = PILOT/APER's pre-split copy, ``auto`` = official when its index files exist.
    Template: ``a photo of a {}, a type of bird.``"""
    if split not in ("auto", "official", "folders"):
        raise ConfigError(f"split: must be auto, official or folders, not {split!r}")
    folder: Path | None = None
    if split in ("auto", "official"):
        try:
            folder = find_folder(NAME, root, ["CUB_200_2011", "."], "train_test_split.txt")
        except DatasetMissing:
            if split == "official":
                raise
    if folder is not None:
        names, splits = _official(folder)
        split = "official"
    else:
        folder = find_folder(NAME, root, ["cub", "."], "train")
        if not (folder / "test").is_dir():
            raise malformed(NAME, folder, "train/ exists but test/ does not")
        names, splits = _folders(folder)
        split = "folders"
    return Dataset(
        NAME,
        tuple(names),
        splits,
        resolve_templates(NAME, templates),
        {"folder": str(folder), "split": split},
    )
