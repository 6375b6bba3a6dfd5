"""Image sources: where the pixels of a split come from (files on disk or arrays in memory)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from driftless.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Read an image file as RGB. A missing or unreadable file raises :class:`DataError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image {path}: {exc}") from exc


class ImageSource(Protocol):
    """A sequence of RGB images with a content fingerprint."""

    def __len__(self) -> int: ...

    def image(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB."""

    def fingerprint(self) -> str:
        """A content key of the images and their order."""


class FileImages:
    """Images stored as files. The fingerprint covers relative paths and file sizes, so that a
    copied dataset keeps its key while a replaced or truncated file changes it."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], root: str | os.PathLike[str]):
        self.root = Path(root)
        self.paths = [Path(p) for p in paths]
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB."""
        return load_image(self.paths[index])

    def fingerprint(self) -> str:
        """A content key of the images and their order."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"files/1")
            for path in self.paths:
                try:
                    size = path.stat().st_size
                except FileNotFoundError as exc:
                    raise DataError(f"image file not found: {path}") from exc
                rel = os.path.relpath(path, self.root)
                digest.update(f"{rel}\0{size}\n".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class ArrayImages:
    """Images held in a uint8 array of shape (N, H, W, 3), e.g. CIFAR's pickles or generated data."""

    def __init__(self, pixels: np.ndarray):
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise DataError(
                f"expected a uint8 array (N, H, W, 3), got {pixels.dtype} {pixels.shape}"
            )
        self.pixels = pixels
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    def image(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB."""
        return Image.fromarray(self.pixels[index])

    def fingerprint(self) -> str:
        """A content key of the images and their order."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"array/1")
            digest.update(str(self.pixels.shape).encode())
            digest.update(np.ascontiguousarray(self.pixels).tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class GrayArrayImages:
    """Greyscale images held in a uint8 array of shape (N, H, W), e.g. MNIST's idx files; each is
    served as RGB (the grey value in all three channels)."""

    def __init__(self, pixels: np.ndarray):
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            raise DataError(f"expected a uint8 array (N, H, W), got {pixels.dtype} {pixels.shape}")
        self.pixels = pixels
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    def image(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB."""
        return Image.fromarray(self.pixels[index]).convert("RGB")

    def fingerprint(self) -> str:
        """A content key of the images and their order."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"gray-array/1")
            digest.update(str(self.pixels.shape).encode())
            digest.update(np.ascontiguousarray(self.pixels).tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint
