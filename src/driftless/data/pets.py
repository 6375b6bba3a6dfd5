"""The Oxford-IIIT Pet dataset as ``torchvision.datasets.OxfordIIITPet`` reads it:
``oxford-iiit-pet/annotations/{trainval,test}.txt`` with lines ``<image id> <class 1..37> <species>
<breed id>``, images ``images/<image id>.jpg``. Class names as torchvision makes them: the image id
without its trailing number, each ``_``-separated word title-cased (``american_pit_bull_terrier_1``
→ ``American Pit Bull Terrier``), in label order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset
from driftless.data.ondisk import files_split, find_folder, malformed, read_lines

NAME = "oxford-pet"


def _entries(folder: Path, split: str) -> list[tuple[str, int]]:
    index_file = folder / "annotations" / f"{split}.txt"
    entries = []
    for number, line in enumerate(read_lines(NAME, index_file), 1):
        if line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or not fields[1].isdigit() or int(fields[1]) < 1:
            raise malformed(
                NAME, index_file, f"line {number}: expected '<id> <class> <species> <breed>'"
            )
        entries.append((fields[0], int(fields[1]) - 1))
    return entries


def oxford_pet(
    root: str | os.PathLike[str], templates: str | Sequence[str] | None = None
) -> Dataset:
    """Oxford-IIIT Pet: 37 breeds, ``trainval`` 3,680 images as train and ``test`` 3,669; ZSCL's
    template."""
    folder = find_folder(NAME, root, ["oxford-iiit-pet", "."], "annotations/trainval.txt")
    train, test = _entries(folder, "trainval"), _entries(folder, "test")
    breeds: dict[int, str] = {}
    for image_id, label in train:
        breeds.setdefault(label, image_id.rsplit("_", 1)[0])
    if sorted(breeds) != list(range(len(breeds))):
        raise malformed(NAME, folder / "annotations" / "trainval.txt", "class numbers have gaps")
    unknown = sorted({label for _, label in test} - set(breeds))
    if unknown:
        raise malformed(NAME, folder / "annotations" / "test.txt", f"unknown classes {unknown[:5]}")
    names = [" ".join(w.title() for w in breeds[i].split("_")) for i in range(len(breeds))]
    splits = {
        name: files_split(
            [folder / "images" / f"{image_id}.jpg" for image_id, _ in entries],
            [label for _, label in entries],
            folder,
        )
        for name, entries in (("train", train), ("test", test))
    }
    return Dataset(
        NAME, tuple(names), splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
