"""MNIST from the idx files that ``torchvision.datasets.MNIST`` leaves in ``MNIST/raw``.

The idx format: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then
each dimension as a big-endian 32-bit integer, then the data in C order. Images are idx3 (N, 28, 28),
labels idx1 (N,). Gzipped files (``*.gz``) are read when the unpacked ones are absent. Class names
are torchvision's (``0 - zero`` … ``9 - nine``), which ZSCL puts in its template."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.images import GrayArrayImages
from driftless.data.ondisk import find_folder, malformed

NAME = "mnist"
CLASS_NAMES = (
    "0 - zero",
    "1 - one",
    "2 - two",
    "3 - three",
    "4 - four",
    "5 - five",
    "6 - six",
    "7 - seven",
    "8 - eight",
    "9 - nine",
)
_FILES = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (or ``path`` + ``.gz``) of unsigned bytes as an array; problems name the file."""
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
    if not path.is_file():
        raise malformed(NAME, path, "file missing")
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise malformed(NAME, path, "not an idx file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise malformed(
            NAME, path, f"header says shape {shape} but the file holds {len(data) - header} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _split(raw: Path, split: str) -> Split:
    prefix = _FILES[split]
    images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise malformed(
            NAME, raw, f"{split}: images of shape {images.shape} and labels of shape {labels.shape}"
        )
    return Split(GrayArrayImages(images), labels.astype(np.int64))


def mnist(root: str | os.PathLike[str], templates: str | Sequence[str] | None = None) -> Dataset:
    """MNIST: 10 classes, 60,000 train / 10,000 test images (28×28 grey, served as RGB); ZSCL's
    template."""
    folder = find_folder(
        NAME,
        root,
        ["MNIST/raw", "raw", "."],
        ("train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"),
    )
    splits = {"train": _split(folder, "train"), "test": _split(folder, "test")}
    return Dataset(
        NAME, CLASS_NAMES, splits, resolve_templates(NAME, templates), {"folder": str(folder)}
    )
