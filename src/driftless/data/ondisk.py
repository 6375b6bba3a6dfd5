"""Shared pieces of the on-disk readers: finding a dataset's folder, reading its index files
(.txt, .json, .mat) and errors that name the dataset, the path and the expected layout."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftless.data.catalog import dataset_info
from driftless.data.dataset import Split
from driftless.data.images import IMAGE_EXTENSIONS, FileImages
from driftless.errors import DataError


class DatasetMissing(DataError):
    """A dataset is not on disk at all (as opposed to present but malformed)."""


def missing(dataset: str, root: Path) -> DatasetMissing:
    """The error for a dataset absent from ``root``: what was expected and where to get it."""
    info = dataset_info(dataset)
    return DatasetMissing(
        f"{info.title} not found under {root}: expected {info.layout}. Get it from {info.source} "
        "(see docs/datasets.md)."
    )


def malformed(dataset: str, path: Path, problem: str) -> DataError:
    """The error for a dataset whose files are present but wrong: the file, the problem, the
    expected layout."""
    info = dataset_info(dataset)
    return DataError(f"{info.title} at {path}: {problem}. Expected layout: {info.layout}.")


def find_folder(
    dataset: str,
    root: str | os.PathLike[str],
    candidates: Sequence[str],
    marker: str | tuple[str, ...],
) -> Path:
    """The first ``root / candidate`` holding ``marker`` (a file or folder; a tuple: any of them).
    When none does, a candidate folder that exists without its marker is malformed; otherwise the
    dataset is missing."""
    root = Path(root).expanduser()
    markers = (marker,) if isinstance(marker, str) else marker
    for candidate in candidates:
        if any((root / candidate / m).exists() for m in markers):
            return root / candidate
    for candidate in candidates:
        if candidate != "." and (root / candidate).is_dir():
            raise malformed(dataset, root / candidate, f"{' or '.join(markers)} is missing")
    raise missing(dataset, root)


def read_lines(dataset: str, path: Path) -> list[str]:
    """The non-empty lines of a text index file, stripped."""
    if not path.is_file():
        raise malformed(dataset, path, "file missing")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise malformed(dataset, path, f"cannot read it ({exc})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_json(dataset: str, path: Path) -> Any:
    """A JSON index file."""
    if not path.is_file():
        raise malformed(dataset, path, "file missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(dataset, path, f"not valid JSON ({exc})") from exc


def read_mat(dataset: str, path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """A MATLAB .mat file (``scipy.io.loadmat`` with ``squeeze_me``) holding ``keys``."""
    from scipy.io import loadmat

    if not path.is_file():
        raise malformed(dataset, path, "file missing")
    try:
        content = loadmat(path, squeeze_me=True)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError… on bad files
        raise malformed(dataset, path, f"not a readable .mat file ({exc})") from exc
    absent = [key for key in keys if key not in content]
    if absent:
        raise malformed(dataset, path, f"lacks the variable(s) {absent}")
    return content


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (torchvision's ImageFolder order)."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` (hidden ones excluded)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def files_split(paths: Sequence[Path], labels: Sequence[int], root: Path) -> Split:
    """A split of image files with their labels; fingerprints use paths relative to ``root``."""
    return Split(FileImages(paths, root), np.asarray(labels, dtype=np.int64))


def missing_files(split: Split) -> list[Path]:
    """The files of a file-backed split that do not exist (empty for in-memory splits)."""
    paths = getattr(split.images, "paths", [])
    return [p for p in paths if not p.is_file()]
