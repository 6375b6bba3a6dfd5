"""miniImageNet from its CSV split files (lines ``filename,label`` after a header; ``label`` is a
WordNet id; images in ``images/``), in the two layouts in use:

- TOPIC/CEC's few-shot class-incremental copy: ``split/train.csv`` and ``split/test.csv`` over the
  same 100 classes (500 training and 100 test images each). Class order = first appearance in
  ``train.csv``, which CEC's session lists follow (classes 0–59 are the base session).
- Ravi & Larochelle's few-shot split: ``train.csv``, ``val.csv``, ``test.csv`` with 64, 16 and 20
  disjoint classes of 600 images. Classes in that order; driftless's rule (not a published split):
  each class's first 500 CSV rows train, the other 100 test.

Class names are the names OpenAI's CLIP gives those ImageNet classes.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftless.data.catalog import imagenet_class_names, resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.images import FileImages
from driftless.data.ondisk import find_folder, malformed

NAME = "miniimagenet"
RAVI_TRAIN_PER_CLASS = 500


def read_split_csv(path: Path) -> list[tuple[str, str]]:
    """(filename, WordNet id) rows of a miniImageNet CSV file."""
    if not path.is_file():
        raise malformed(NAME, path, "file missing")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip() for c in rows[0][:2]] != ["filename", "label"]:
        raise malformed(NAME, path, "expected the header 'filename,label'")
    result = []
    for number, row in enumerate(rows[1:], 2):
        if len(row) < 2 or not row[0].strip() or not row[1].strip().startswith("n"):
            raise malformed(NAME, path, f"line {number}: expected '<file>,<wnid>', got {row}")
        result.append((row[0].strip(), row[1].strip()))
    return result


def _split(folder: Path, rows: Sequence[tuple[str, str]], label_of: dict[str, int]) -> Split:
    paths = [folder / "images" / name for name, _ in rows]
    return Split(FileImages(paths, folder), np.asarray([label_of[w] for _, w in rows]))


def miniimagenet(
    root: str | os.PathLike[str], templates: str | Sequence[str] | None = None
) -> Dataset:
    """miniImageNet, 100 classes (see the module docstring for the two CSV layouts). Template:
    ``a photo of a {}.``"""
    folder = find_folder(NAME, root, ["miniimagenet", "mini_imagenet", "miniImageNet", "."],
                         ("split/train.csv", "train.csv"))  # fmt: skip
    if (folder / "split" / "train.csv").is_file():
        train = read_split_csv(folder / "split" / "train.csv")
        test = read_split_csv(folder / "split" / "test.csv")
        wnids = list(dict.fromkeys(w for _, w in train))
        label_of = {w: i for i, w in enumerate(wnids)}
        stray = sorted({w for _, w in test} - set(label_of))
        if stray:
            raise malformed(
                NAME, folder / "split" / "test.csv", f"classes {stray[:3]} are not in train.csv"
            )
        splits = {"train": _split(folder, train, label_of), "test": _split(folder, test, label_of)}
        layout = "fscil"
    else:
        rows = [
            r for part in ("train", "val", "test") for r in read_split_csv(folder / f"{part}.csv")
        ]
        wnids = list(dict.fromkeys(w for _, w in rows))
        label_of = {w: i for i, w in enumerate(wnids)}
        train_rows, test_rows = [], []
        for wnid in wnids:
            members = [r for r in rows if r[1] == wnid]
            train_rows += members[:RAVI_TRAIN_PER_CLASS]
            test_rows += members[RAVI_TRAIN_PER_CLASS:]
        splits = {
            "train": _split(folder, train_rows, label_of),
            "test": _split(folder, test_rows, label_of),
        }
        layout = "ravi"
    names = imagenet_class_names()
    unknown = [w for w in wnids if w not in names]
    if unknown:
        raise malformed(NAME, folder, f"{unknown[:3]} are not ImageNet-1k WordNet ids")
    return Dataset(
        NAME,
        tuple(names[w] for w in wnids),
        splits,
        resolve_templates(NAME, templates),
        {"folder": str(folder), "layout": layout},
    )
