"""The feature store: encode each (backbone, images, transform) once, keep it on disk, memory-map it.

Layout under ``root``::

    <key>/features.npy   float32 (N, D), unnormalized image embeddings in split order
    <key>/meta.json      what was encoded: backbone, split fingerprint, transform, shape
    <key>.partial/       chunks of an extraction under way: chunk_000000.npy, ...
    <key>.lock           held by the one process extracting <key>

Atomicity: every chunk is written to a temporary file and renamed into place, so a chunk file that
exists is whole; a killed extraction resumes from its finished chunks. The entry directory is
assembled under a temporary name and renamed to ``<key>`` only when complete, so a reader never
sees a half-written entry. Processes that want the same missing entry at once (two runs sharing a
cache) take turns through a per-entry lock file: the first extracts, the others then find the
finished entry and read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from driftless.atomic import atomic_write
from driftless.backbones.base import Backbone
from driftless.data.dataset import Split
from driftless.errors import DataError

STORE_FORMAT = 1


class _PreprocessedImages(torch.utils.data.Dataset):
    def __init__(self, split: Split, start: int, stop: int, preprocess):
        self.split, self.start, self.stop, self.preprocess = split, start, stop, preprocess

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.split.image(self.start + i))


@dataclass
class StoreStats:
    """Counters that prove what the store did: images encoded, entries read back."""

    images_encoded: int = 0
    entries_extracted: int = 0
    entries_reused: int = 0


def _atomic_save(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.save(fh, array))


class FeatureStore:
    """Disk cache of image embeddings keyed by (backbone fingerprint, split fingerprint, transform)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        chunk_size: int = 2048,
        batch_size: int = 256,
        num_workers: int = 0,
        progress: bool = True,
    ):
        self.root = Path(root).expanduser()
        self.chunk_size = chunk_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self.stats = StoreStats()

    @staticmethod
    def key(backbone: Backbone, split: Split) -> str:
        """The entry key: sha256 of backbone fingerprint, split fingerprint and transform."""
        payload = {
            "format": STORE_FORMAT,
            "backbone": backbone.fingerprint,
            "images": split.fingerprint(),
            "transform": backbone.preprocess.transform_id,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:40]

    def path(self, backbone: Backbone, split: Split) -> Path:
        """The entry directory of ``split`` under ``backbone``."""
        return self.root / self.key(backbone, split)

    def has(self, backbone: Backbone, split: Split) -> bool:
        """Whether a complete entry exists (a partial one does not count)."""
        return (self.path(backbone, split) / "meta.json").is_file()

    def get(self, backbone: Backbone, split: Split, description: str = "") -> np.ndarray:
        """The (N, D) float32 features of ``split``, memory-mapped; extracted first if absent."""
        entry = self.path(backbone, split)
        if not (entry / "meta.json").is_file():
            entry.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(entry.with_name(entry.name + ".lock")):
                # another process may have finished this entry while we waited for the lock
                if not (entry / "meta.json").is_file():
                    self._extract(backbone, split, entry, description)
                    self.stats.entries_extracted += 1
                    return self._read(entry, len(split))
        self.stats.entries_reused += 1
        return self._read(entry, len(split))

    def put(self, backbone: Backbone, split: Split, features: np.ndarray) -> np.ndarray:
        """Store features computed elsewhere (the ranks of a distributed extraction) as the entry
        of ``split``, through the same chunks-then-assemble path as an extraction; an entry that
        already exists is kept. Returns the stored features, memory-mapped."""
        if features.shape[0] != len(split):
            raise ValueError(f"put: {features.shape[0]} rows for a split of {len(split)} images")
        entry = self.path(backbone, split)
        entry.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(entry.with_name(entry.name + ".lock")):
            if not (entry / "meta.json").is_file():
                if entry.exists():
                    shutil.rmtree(entry)
                partial = entry.with_name(entry.name + ".partial")
                partial.mkdir(parents=True, exist_ok=True)
                starts = list(range(0, len(split), self.chunk_size))
                for start in starts:
                    rows = np.ascontiguousarray(features[start : start + self.chunk_size])
                    _atomic_save(partial / f"chunk_{start // self.chunk_size:06d}.npy", rows)
                self._assemble(partial, entry, len(starts), backbone, split)
                self.stats.entries_extracted += 1
        return self._read(entry, len(split))

    def _read(self, entry: Path, expected_rows: int) -> np.ndarray:
        meta = json.loads((entry / "meta.json").read_text())
        features = np.load(entry / "features.npy", mmap_mode="r")
        if features.shape != tuple(meta["shape"]) or features.shape[0] != expected_rows:
            raise DataError(
                f"feature store entry {entry} has shape {features.shape}, expected {meta['shape']} "
                f"with {expected_rows} rows; delete it to re-extract"
            )
        return features

    def _extract(self, backbone: Backbone, split: Split, entry: Path, description: str) -> None:
        if entry.exists():  # an entry without meta.json is debris from outside the store: redo it
            shutil.rmtree(entry)
        partial = entry.with_name(entry.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        n = len(split)
        starts = list(range(0, n, self.chunk_size))
        todo = [
            s for s in starts if not (partial / f"chunk_{s // self.chunk_size:06d}.npy").is_file()
        ]
        bar = tqdm(
            total=n,
            initial=n - sum(min(self.chunk_size, n - s) for s in todo),
            unit="img",
            desc=f"encode {description or split.images.__class__.__name__}",
            disable=not self.progress,
            leave=False,
        )
        was_training = backbone.model.training
        backbone.model.eval()
        try:
            for start in todo:
                stop = min(start + self.chunk_size, n)
                loader = DataLoader(
                    _PreprocessedImages(split, start, stop, backbone.preprocess),
                    batch_size=self.batch_size,
                    num_workers=self.num_workers,
                )
                parts = []
                with torch.inference_mode():
                    for pixels in loader:
                        parts.append(backbone.encode_images(pixels).float().cpu().numpy())
                        self.stats.images_encoded += len(pixels)
                        bar.update(len(pixels))
                _atomic_save(
                    partial / f"chunk_{start // self.chunk_size:06d}.npy", np.concatenate(parts)
                )
        finally:
            backbone.model.train(was_training)
            bar.close()
        self._assemble(partial, entry, len(starts), backbone, split)

    def _assemble(
        self, partial: Path, entry: Path, num_chunks: int, backbone: Backbone, split: Split
    ) -> None:
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{entry.name}.", suffix=".tmp"))
        try:
            chunks = [
                np.load(partial / f"chunk_{i:06d}.npy", mmap_mode="r") for i in range(num_chunks)
            ]
            dim = chunks[0].shape[1]
            out = np.lib.format.open_memmap(
                staging / "features.npy", mode="w+", dtype=np.float32, shape=(len(split), dim)
            )
            row = 0
            for chunk in chunks:
                out[row : row + len(chunk)] = chunk
                row += len(chunk)
            out.flush()
            del out
            meta = {
                "format": STORE_FORMAT,
                "backbone": backbone.name,
                "backbone_fingerprint": backbone.fingerprint,
                "split_fingerprint": split.fingerprint(),
                "transform": backbone.preprocess.transform_id,
                "shape": [len(split), dim],
                "dtype": "float32",
            }
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
            try:
                os.rename(staging, entry)
            except OSError:
                if not (entry / "meta.json").is_file():  # another process did not finish it either
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
