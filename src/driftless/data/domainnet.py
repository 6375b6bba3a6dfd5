"""DomainNet, the cleaned version (Peng et al., "Moment matching for multi-source domain
adaptation", ICCV 2019; ai.bu.edu/M3SDA): 345 classes in six domains — clipart, infograph,
painting, quickdraw, real, sketch — each unpacked as ``<domain>/<class>/<image>.jpg`` beside its
official lists ``<domain>_train.txt`` and ``<domain>_test.txt`` (lines ``<domain>/<class>/<image>
<label>``).

Splits ``<domain>/train`` and ``<domain>/test`` for the domain-incremental protocol, and
``train``/``test`` with every domain present. Class ``l`` is named after the folder the lists give
label ``l`` (underscores as spaces); every domain must agree on it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.images import FileImages
from driftless.data.ondisk import find_folder, malformed, read_lines
from driftless.errors import ConfigError

NAME = "domainnet"
DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
NUM_CLASSES = 345


def _read_list(folder: Path, domain: str, split: str, classes: dict[int, str]) -> Split:
    path = folder / f"{domain}_{split}.txt"
    paths, labels = [], []
    for number, line in enumerate(read_lines(NAME, path), 1):
        relative, _, label_text = line.rpartition(" ")
        parts = relative.split("/")
        if not label_text.isdigit() or len(parts) != 3 or parts[0] != domain:
            raise malformed(
                NAME,
                path,
                f"line {number}: expected '{domain}/<class>/<image> <label>', got {line!r}",
            )
        label = int(label_text)
        if label >= NUM_CLASSES:
            raise malformed(NAME, path, f"line {number}: label {label} ≥ {NUM_CLASSES}")
        if classes.setdefault(label, parts[1]) != parts[1]:
            raise malformed(
                NAME,
                path,
                f"line {number}: label {label} is {parts[1]!r} here, {classes[label]!r} elsewhere",
            )
        paths.append(folder / relative)
        labels.append(label)
    return Split(FileImages(paths, folder), np.asarray(labels, dtype=np.int64))


def domainnet(
    root: str | os.PathLike[str],
    domains: Sequence[str] = DOMAINS,
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """DomainNet (cleaned) with the given ``domains`` (default: all six), from the official
    train/test lists. Template: ``a photo of a {}.``"""
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown or not domains:
        raise ConfigError(f"domains: {unknown or 'none'} given; known: {list(DOMAINS)}")
    folder = find_folder(NAME, root, ["domainnet", "DomainNet", "."], f"{domains[0]}_train.txt")
    classes: dict[int, str] = {}
    splits: dict[str, Split] = {}
    for domain in domains:
        for split in ("train", "test"):
            splits[f"{domain}/{split}"] = _read_list(folder, domain, split, classes)
    missing = sorted(set(range(NUM_CLASSES)) - set(classes))
    if missing:
        raise malformed(NAME, folder, f"the lists never use labels {missing[:5]} (345 classes)")
    for split in ("train", "test"):
        parts = [splits[f"{d}/{split}"] for d in domains]
        paths = [p for part in parts for p in part.images.paths]  # type: ignore[attr-defined]
        splits[split] = Split(FileImages(paths, folder), np.concatenate([p.labels for p in parts]))
    names = tuple(classes[label].replace("_", " ") for label in range(NUM_CLASSES))
    return Dataset(NAME, names, splits, resolve_templates(NAME, templates), {"folder": str(folder)})
