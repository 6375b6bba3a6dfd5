"""Reader for the image-folder layout: ``root/<class name>/<image file>``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftless.data.dataset import DEFAULT_TEMPLATES, Dataset, Split
from driftless.data.images import IMAGE_EXTENSIONS, FileImages
from driftless.errors import DataError

FOLDER_LAYOUT = (
    "root/<class>/<image> (one sub-folder per class), or root/train/... and root/test/..."
)


def read_class_folders(
    root: str | os.PathLike[str], class_names: Sequence[str] | None = None
) -> Split:
    """Read one split laid out as ``root/<class>/<image>``. Classes are the sorted sub-folder names
    unless ``class_names`` fixes them (and their order)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root} (expected layout: {FOLDER_LAYOUT})")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    names = list(class_names) if class_names is not None else found
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"image folder {root} lacks class folders {missing[:5]}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        files = sorted(
            p
            for p in (root / name).iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:  # a class trained on nothing would silently score zero
            raise DataError(
                f"class folder {root / name} holds no images (looked for {sorted(IMAGE_EXTENSIONS)} "
                "files); add its images or remove the folder"
            )
        paths.extend(files)
        labels.extend([label] * len(files))
    if not paths:
        raise DataError(f"image folder {root} holds no images (expected layout: {FOLDER_LAYOUT})")
    return Split(FileImages(paths, root), np.asarray(labels))


def image_folder(
    root: str | os.PathLike[str],
    name: str | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    underscores_to_spaces: bool = True,
) -> Dataset:
    """A dataset from ``root/train/<class>/...`` and ``root/test/<class>/...``; if ``root`` has no
    train/test folders it is a single ``test`` split (evaluation only). Class names are the folder
    names, with underscores read as spaces."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"image folder dataset not found: {root} (expected layout: {FOLDER_LAYOUT})"
        )
    split_dirs = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    if split_dirs:
        folders = sorted({d.name for p in split_dirs.values() for d in _class_dirs(p)})
        splits = {
            s: read_class_folders(p, folders) if _has_all(p, folders) else None
            for s, p in split_dirs.items()
        }
        incomplete = [s for s, v in splits.items() if v is None]
        if incomplete:
            raise DataError(
                f"image folder {root}: split(s) {incomplete} lack some of the classes {folders[:5]}..."
            )
    else:
        folders = sorted(d.name for d in _class_dirs(root))
        splits = {"test": read_class_folders(root, folders)}
    class_names = [f.replace("_", " ") if underscores_to_spaces else f for f in folders]
    return Dataset(name or root.name, tuple(class_names), splits, tuple(templates))  # type: ignore[arg-type]


def _class_dirs(path: Path) -> list[Path]:
    """Sub-folders that name classes: hidden ones (``.ipynb_checkpoints``, ``.git``) are not."""
    return [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]


def _has_all(path: Path, folders: Sequence[str]) -> bool:
    return all((path / f).is_dir() for f in folders)
