"""TinyImageNet (``tiny-imagenet-200``) as continuum reads it for Continual-CLIP, ZSCL and
MoE-Adapters: labels are line numbers of ``wnids.txt``; training images are
``train/<wnid>/images/<image>`` (sorted); the validation set, which these papers use as the test set,
is ``val/val_annotations.txt`` (lines ``<file>\\t<wnid>\\t<box>``, in file order) with images in
``val/images/``. Class names are CLIP's ImageNet names of the WordNet ids (they equal Continual-CLIP's
``tinyimagenet_classes.txt``); ``words.txt`` is not needed."""

from __future__ import annotations

import os
from collections.abc import Sequence

from driftless.data.catalog import imagenet_class_names
from driftless.data.dataset import Dataset
from driftless.data.imagenet import wnid_dataset
from driftless.data.ondisk import files_split, find_folder, image_files, malformed, read_lines

NAME = "tinyimagenet"


def tinyimagenet(
    root: str | os.PathLike[str], templates: str | Sequence[str] | None = None
) -> Dataset:
    """TinyImageNet: 200 classes, 100,000 train / 10,000 test (val) images of 64×64; template:
    Continual-CLIP's ``a bad photo of a {}.``"""
    folder = find_folder(
        NAME, root, ["tiny-imagenet-200", "tinyimagenet/tiny-imagenet-200", "."], "wnids.txt"
    )
    wnids = read_lines(NAME, folder / "wnids.txt")
    index = {w: i for i, w in enumerate(wnids)}
    names = imagenet_class_names()
    unknown = [w for w in wnids if w not in names]
    if unknown:
        raise malformed(
            NAME, folder / "wnids.txt", f"WordNet ids outside ImageNet-1k: {unknown[:5]}"
        )
    train_paths, train_labels = [], []
    for label, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        if not images.is_dir():
            raise malformed(NAME, images, "training image folder missing")
        files = image_files(images)
        train_paths.extend(files)
        train_labels.extend([label] * len(files))
    annotations = folder / "val" / "val_annotations.txt"
    test_paths, test_labels = [], []
    for number, line in enumerate(read_lines(NAME, annotations), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise malformed(NAME, annotations, f"line {number}: expected <file>\\t<wnid>\\t…")
        test_paths.append(folder / "val" / "images" / fields[0])
        test_labels.append(index[fields[1]])
    splits = {
        "train": files_split(train_paths, train_labels, folder),
        "test": files_split(test_paths, test_labels, folder),
    }
    return wnid_dataset(NAME, wnids, splits, templates, {"folder": str(folder)})
