"""Content hashes of what driftless writes, so that a damaged file is refused instead of read.

A checkpoint carries :func:`content_digest` of its state, computed from the objects in memory when it
is written and recomputed from the loaded objects when it is read; a feature-store file carries the
sha256 of its bytes (:func:`file_sha256`), computed while it is written.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

_READ_BLOCK = 8 * 2**20


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def content_digest(value: Any) -> str:
    """Hex sha256 of a nested state (mappings, sequences, tensors, arrays, numbers, strings): equal
    for a state and its ``torch.save`` / ``torch.load`` round trip, different when any tensor byte,
    number, string, key or shape differs."""
    digest = hashlib.sha256()
    _update(digest, value)
    return digest.hexdigest()


def _tag(digest: Any, tag: str, size: int = 0) -> None:
    digest.update(tag.encode())
    digest.update(struct.pack("<q", size))


def _update(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        _tag(digest, f"tensor:{tensor.dtype}:{tuple(value.shape)}", tensor.numel())
        digest.update(tensor.view(torch.uint8).numpy().data)
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        _tag(digest, f"ndarray:{array.dtype.str}:{array.shape}", array.size)
        digest.update(array.view(np.uint8).data if array.size else b"")
    elif isinstance(value, Mapping):
        _tag(digest, "map", len(value))
        for key, item in value.items():
            _update(digest, key)
            _update(digest, item)
    elif isinstance(value, list | tuple):
        _tag(digest, "seq", len(value))
        for item in value:
            _update(digest, item)
    elif isinstance(value, str | bytes):
        data = value.encode() if isinstance(value, str) else value
        _tag(digest, type(value).__name__, len(data))
        digest.update(data)
    else:  # None, bool, int, float, torch.dtype, ...: their repr is exact (floats round-trip)
        text = repr(value).encode()
        _tag(digest, type(value).__name__, len(text))
        digest.update(text)
