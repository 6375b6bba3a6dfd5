"""SUN397 as ``torchvision.datasets.SUN397`` reads it, split 80/20 as ZSCL does.

``SUN397/ClassName.txt`` lists the classes in label order as paths (``/a/abbey``,
``/a/apartment_building/outdoor``); the class name is the path without its leading ``/<letter>/``
(underscores read as spaces, as ZSCL does). Images are every ``sun_*.jpg`` below ``SUN397/``; an
image's class is its folder path below the letter folder.

torchvision lists the images with ``Path.rglob("sun_*.jpg")`` and does not sort them, so its order
(and with it ZSCL's random split) is the order in which the file system enumerates the folders, for
the Python version in use. ``sample_order="torchvision"`` (the default) enumerates exactly as
torchvision does, which reproduces ZSCL's split on the same machine; ``"sorted"`` sorts the paths,
which gives the same split on every machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset
from driftless.data.ondisk import find_folder, malformed, read_lines
from driftless.data.splits import random_train_test
from driftless.errors import ConfigError

NAME = "sun397"


def sun397_samples(
    folder: Path, class_paths: list[str], sample_order: str
) -> tuple[list[Path], list[int]]:
    """(paths, labels) of every image below ``folder`` in the chosen order."""
    index = {c: i for i, c in enumerate(class_paths)}
    paths = list(folder.rglob("sun_*.jpg"))
    if sample_order == "sorted":
        paths.sort(key=lambda p: p.relative_to(folder).as_posix())
    labels = []
    for path in paths:
        class_path = "/".join(path.relative_to(folder).parts[1:-1])
        if class_path not in index:
            raise malformed(
                NAME, path, f"its folder {class_path!r} is not a class of ClassName.txt"
            )
        labels.append(index[class_path])
    return paths, labels


def sun397(
    root: str | os.PathLike[str],
    sample_order: Literal["torchvision", "sorted"] = "torchvision",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """SUN397: 397 classes, 108,754 images split 80/20 by ``random_split`` with seed 42 (87,003
    train / 21,751 test); ZSCL's templates."""
    if sample_order not in ("torchvision", "sorted"):
        raise ConfigError(f"sample_order: must be torchvision or sorted, not {sample_order!r}")
    folder = find_folder(NAME, root, ["SUN397", "."], "ClassName.txt")
    lines = read_lines(NAME, folder / "ClassName.txt")
    bad = [line for line in lines if not (line.startswith("/") and line[2:3] == "/")]
    if bad:
        raise malformed(
            NAME, folder / "ClassName.txt", f"expected lines like /a/abbey, got {bad[0]!r}"
        )
    class_paths = [line[3:] for line in lines]
    paths, labels = sun397_samples(folder, class_paths, sample_order)
    if not paths:
        raise malformed(NAME, folder, "holds no sun_*.jpg images")
    splits = random_train_test(paths, labels, folder)
    names = [c.replace("_", " ") for c in class_paths]
    metadata = {"folder": str(folder), "sample_order": sample_order}
    return Dataset(NAME, tuple(names), splits, resolve_templates(NAME, templates), metadata)
