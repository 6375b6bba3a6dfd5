"""Fixed few-shot session lists: CEC's ``data/index_list/<dataset>/session_<k>.txt`` (Zhang et al.,
"Few-shot incremental learning with continually evolved classifiers", CVPR 2021,
github.com/icoz69/CEC-CVPR2021), the files the FSCIL literature shares so that everyone trains on the
same five shots. driftless does not ship them (they are a random draw, not a rule it could
re-create); it reads them from ``<data-root>/index_list/<dataset>/`` (or ``<data-root>/data/…``).

A file lists one training sample per line: an integer index into the train split (CIFAR-100), or an
image path (miniImageNet: ``MINI-ImageNet/train/<wnid>/<file>.jpg``; CUB-200:
``CUB_200_2011/images/<class>/<file>.jpg``) matched to the dataset's train images by file name.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np

from driftless.data.dataset import Dataset
from driftless.data.ondisk import DatasetMissing
from driftless.errors import DataError

CEC_SOURCE = "https://github.com/icoz69/CEC-CVPR2021 (folder data/index_list/)"


def find_session_folder(data_root: str | os.PathLike[str], name: str) -> Path:
    """``<data-root>/index_list/<name>`` or ``<data-root>/data/index_list/<name>``, whichever holds
    ``session_1.txt`` or ``session_2.txt``."""
    root = Path(data_root).expanduser()
    for folder in (root / "index_list" / name, root / "data" / "index_list" / name):
        if (folder / "session_1.txt").is_file() or (folder / "session_2.txt").is_file():
            return folder
    raise DatasetMissing(
        f"FSCIL session lists for {name} not found: expected {root}/index_list/{name}/"
        f"session_<k>.txt (CEC's files). Get them from {CEC_SOURCE}, or copy the benchmark's spec "
        "and set session_lists: null to draw the shots with its seed (docs/datasets.md)."
    )


def session_files(folder: Path) -> list[Path]:
    """``session_1.txt`` (when present), ``session_2.txt``, … up to the first gap."""
    first = 1 if (folder / "session_1.txt").is_file() else 2
    files = []
    k = first
    while (folder / f"session_{k}.txt").is_file():
        files.append(folder / f"session_{k}.txt")
        k += 1
    return files


def _file_index(dataset: Dataset) -> dict[str, int]:
    paths = getattr(dataset.split("train").images, "paths", None)
    if paths is None:
        raise DataError(
            f"session lists name image files, but {dataset.name}'s train images are not files"
        )
    index: dict[str, int] = {}
    for i, path in enumerate(paths):
        if path.name in index:
            raise DataError(
                f"session lists: {dataset.name} has two train images named {path.name}; "
                "lists cannot be matched by file name"
            )
        index[path.name] = i
    return index


def parse_session_file(path: Path, dataset: Dataset, files: dict[str, int] | None) -> np.ndarray:
    """The train-split indices one session file lists, in file order."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    size = len(dataset.split("train"))
    indices = []
    for number, line in enumerate(lines, 1):
        if line.isdigit():
            index = int(line)
            if index >= size:
                raise DataError(
                    f"{path}: line {number}: index {index} is outside {dataset.name}'s "
                    f"{size} training images"
                )
        else:
            if files is None:
                raise DataError(
                    f"{path}: line {number}: {line!r} is not an index into {dataset.name}'s "
                    "training images"
                )
            file_name = PurePosixPath(line.replace("\\", "/")).name
            if file_name not in files:
                raise DataError(
                    f"{path}: line {number}: {file_name} is not among {dataset.name}'s training "
                    "images (is the dataset the same copy the lists were made from?)"
                )
            index = files[file_name]
        indices.append(index)
    if not indices:
        raise DataError(f"{path}: the session list is empty")
    return np.asarray(indices, dtype=np.int64)


def read_cec_sessions(
    data_root: str | os.PathLike[str], name: str, dataset: Dataset
) -> list[np.ndarray]:
    """Every session's training samples (indices into ``dataset``'s train split) from CEC's lists
    ``<data-root>/index_list/<name>/session_<k>.txt``; the list starts at session 2 when
    ``session_1.txt`` is absent (the base session is then every image of the remaining classes)."""
    folder = find_session_folder(data_root, name)
    paths = session_files(folder)
    sample = paths[0].read_text(encoding="utf-8").split()
    files = None if all(token.isdigit() for token in sample) else _file_index(dataset)
    return [parse_session_file(p, dataset, files) for p in paths]
