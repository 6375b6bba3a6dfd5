"""The ImageNet family: ImageNet-R and ImageNet-A (200 classes each) and Continual-CLIP's
ImageNet-100. Every class is a WordNet id (``n01443537``), a folder on disk; its name is the one
OpenAI's CLIP uses (``assets/imagenet_classes.json``), and the label order is the sorted WordNet ids
(torchvision's ImageFolder order, PILOT's and continuum's too).

ImageNet-R and ImageNet-A have no official train/test split. PILOT (and APER, whose copies PILOT
uses) read pre-split ``train/`` and ``test/`` folders; when those exist we read them, so the split is
theirs. The original archives hold one folder per class; we then split 80/20 with
``random_split``'s seed-42 permutation over the sorted images, as ZSCL splits its datasets (PILOT's
own split was drawn once and is only published as image folders).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from driftless.data.catalog import imagenet_class_names, imagenet_subset, resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.ondisk import (
    class_folders,
    files_split,
    find_folder,
    image_files,
    malformed,
)
from driftless.data.splits import random_train_test
from driftless.errors import ConfigError


def wnid_folder_samples(
    dataset: str, folder: Path, wnids: Sequence[str], require_all: bool = True
) -> tuple[list[Path], list[int]]:
    """(paths, labels) of ``folder/<wnid>/<image>`` for the classes ``wnids`` (label = position),
    classes in order, files sorted. Folders of other classes are an error unless ``require_all``
    is False, which also lets classes be absent."""
    found = set(class_folders(folder))
    absent = [w for w in wnids if w not in found]
    extra = sorted(found - set(wnids))
    if require_all and (absent or extra):
        raise malformed(
            dataset,
            folder,
            f"expected {len(wnids)} WordNet-id folders; missing {absent[:5]}, "
            f"unexpected {extra[:5]}",
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        if wnid in found:
            files = image_files(folder / wnid)
            paths.extend(files)
            labels.extend([label] * len(files))
    if not paths:
        raise malformed(dataset, folder, "holds no images")
    return paths, labels


def wnid_dataset(
    dataset: str,
    wnids: Sequence[str],
    splits: Mapping[str, Split],
    templates: str | Sequence[str] | None,
    metadata: Mapping[str, object],
) -> Dataset:
    """The dataset whose label l is the WordNet id ``wnids[l]``, named as CLIP names it, with
    ``templates`` resolved by :func:`~driftless.data.catalog.resolve_templates`."""
    names = imagenet_class_names()
    return Dataset(
        dataset,
        tuple(names[w] for w in wnids),
        splits,
        resolve_templates(dataset, templates),
        metadata,
    )


def _two_hundred_classes(
    dataset: str,
    root: str | os.PathLike[str],
    split: str,
    templates: str | Sequence[str] | None,
) -> Dataset:
    if split not in ("auto", "folders", "random"):
        raise ConfigError(f"split: must be auto, folders or random, not {split!r}")
    wnids = imagenet_subset(dataset)
    folder = find_folder(dataset, root, [dataset, "."], (wnids[0], f"train/{wnids[0]}"))
    has_folders = (folder / "train").is_dir() and (folder / "test").is_dir()
    if split == "folders" and not has_folders:
        raise malformed(dataset, folder, "split 'folders' needs train/ and test/ folders")
    splits: dict[str, Split]
    if split == "folders" or (split == "auto" and has_folders):
        extra = sorted(set(class_folders(folder / "test")) - set(wnids))
        if extra:
            raise malformed(dataset, folder / "test", f"unexpected class folders {extra[:5]}")
        splits = {
            "train": files_split(*wnid_folder_samples(dataset, folder / "train", wnids), folder),
            "test": files_split(
                *wnid_folder_samples(dataset, folder / "test", wnids, require_all=False), folder
            ),
        }
        split = "folders"
    else:
        splits = random_train_test(*wnid_folder_samples(dataset, folder, wnids), folder)
        split = "random"
    return wnid_dataset(dataset, wnids, splits, templates, {"folder": str(folder), "split": split})


def imagenet_r(
    root: str | os.PathLike[str],
    split: Literal["auto", "folders", "random"] = "auto",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """ImageNet-R: 200 classes, 30,000 renditions. ``split``: ``folders`` reads PILOT's
    ``train/``/``test/`` folders, ``random`` splits the original archive 80/20 (24,000 / 6,000),
    ``auto`` picks ``folders`` when they exist. Templates: CLIP's 80 ImageNet prompts."""
    return _two_hundred_classes("imagenet-r", root, split, templates)


def imagenet_a(
    root: str | os.PathLike[str],
    split: Literal["auto", "folders", "random"] = "auto",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """ImageNet-A: 200 classes, 7,500 natural adversarial images. ``split`` as for
    :func:`imagenet_r` (the random split gives 6,000 / 1,500). Templates: CLIP's 80 ImageNet
    prompts."""
    return _two_hundred_classes("imagenet-a", root, split, templates)


def imagenet100(
    root: str | os.PathLike[str], templates: str | Sequence[str] | None = None
) -> Dataset:
    """Continual-CLIP's ImageNet-100: the first 100 ImageNet-1k classes (sorted WordNet ids); train
    = all their ILSVRC2012 training images, test = their 5,000 validation images, read from
    ``ImageNet/{train,val}/<wnid>/``. Template: Continual-CLIP's ``a good photo of a {}.``"""
    dataset = "imagenet100"
    wnids = imagenet_subset(dataset)
    folder = find_folder(dataset, root, ["ImageNet", "imagenet", "."], f"val/{wnids[0]}")
    splits = {}
    for split, sub in (("train", "train"), ("test", "val")):
        absent = [w for w in wnids if not (folder / sub / w).is_dir()]
        if absent:
            raise malformed(dataset, folder / sub, f"lacks the class folders {absent[:5]}")
        paths, labels = wnid_folder_samples(dataset, folder / sub, wnids, require_all=False)
        splits[split] = files_split(paths, labels, folder)
    return wnid_dataset(dataset, wnids, splits, templates, {"folder": str(folder)})
