"""The feature store: encode each (backbone, images, transform) once, keep it on disk, memory-map it.

Layout under ``root``::

    <key>/features.npy   float32 (N, D), unnormalized image embeddings in split order
    <key>/meta.json      what was encoded: backbone, split fingerprint, transform, shape, and the
                         sha256 of features.npy
    <key>.partial/       chunks of an extraction under way: chunk_<start>_<stop>.<sha256>.npy
    <key>.lock           held by the one process extracting <key>

Atomicity: every chunk is written to a temporary file and renamed into place, so a chunk file that
exists is whole; a killed extraction resumes from its finished chunks (:data:`CHUNK_SIZE` images
each, so a kill loses at most that many). The entry directory is assembled under a temporary name
and renamed to ``<key>`` only when complete, so a reader never sees a half-written entry. Processes
that want the same missing entry at once (two runs sharing a cache) take turns through a per-entry
lock file: the first extracts, the others then find the finished entry and read it. Temporary files
left by a killed writer are removed by the next process that takes that entry's lock.

Integrity: each chunk's name carries the sha256 of its rows and ``meta.json`` the sha256 of
``features.npy``, both computed once, as they are written. A chunk is checked when it is assembled;
an entry when a store first reads it (every read of a new :class:`FeatureStore`; see
docs/reliability.md for the cost). A mismatch is a :class:`~driftless.errors.DataError` naming the
entry to delete, never a silent read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from filelock import FileLock, Timeout
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from driftless.atomic import (
    TEMP_SUFFIX,
    atomic_write,
    make_temp_dir,
    remove_stale_temp_files,
    storage_error,
)
from driftless.backbones.base import Backbone
from driftless.data.dataset import Split
from driftless.errors import DataError, StorageError
from driftless.integrity import file_sha256

STORE_FORMAT = 2
#: images per saved chunk: what a killed extraction can lose (about 2 min of ViT-B/16 on 2 CPU cores)
CHUNK_SIZE = 256
_CHUNK_NAME = re.compile(r"^chunk_(\d{9})_(\d{9})\.([0-9a-f]{64})\.npy$")


class _PreprocessedImages(torch.utils.data.Dataset):
    def __init__(self, split: Split, indices: Sequence[int], preprocess):
        self.split, self.indices, self.preprocess = split, indices, preprocess

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.split.image(self.indices[i]))


@dataclass
class StoreStats:
    """Counters that prove what the store did: images encoded, entries read back."""

    images_encoded: int = 0
    entries_extracted: int = 0
    entries_reused: int = 0
    entries_verified: int = 0
    stale_temp_files_removed: int = 0


class _HashingWriter:
    """A binary file that hashes what is written through it."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes | memoryview) -> int:
        data = memoryview(data).cast("B")  # len() of an array's memoryview counts rows, not bytes
        self.digest.update(data)
        self.size += len(data)
        return self.fh.write(data)


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").data).hexdigest()


def _chunk_name(start: int, stop: int, sha256: str) -> str:
    return f"chunk_{start:09d}_{stop:09d}.{sha256}.npy"


class FeatureStore:
    """Disk cache of image embeddings keyed by (backbone fingerprint, split fingerprint, transform)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        chunk_size: int = CHUNK_SIZE,
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
        self._verified: dict[Path, tuple[int, int, int]] = {}
        self._swept = False

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
        self._sweep_once()
        if not (entry / "meta.json").is_file():
            self._create_parent(entry)
            with FileLock(self._lock_path(entry.name)):
                # another process may have finished this entry while we waited for the lock
                if not (entry / "meta.json").is_file():
                    self._remove_debris(entry.name)
                    self._extract(backbone, split, entry, description)
                    self.stats.entries_extracted += 1
                    return self._read(entry, len(split))
        self.stats.entries_reused += 1
        return self._read(entry, len(split))

    @staticmethod
    def _create_parent(entry: Path) -> None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, entry.parent, "create the feature store") from exc

    def put(self, backbone: Backbone, split: Split, features: np.ndarray) -> np.ndarray:
        """Store features computed elsewhere (the ranks of a distributed extraction) as the entry
        of ``split``, through the same hashed chunks and assembly as an extraction; an entry that
        already exists is kept. Returns the stored features, memory-mapped."""
        if features.shape[0] != len(split):
            raise ValueError(f"put: {features.shape[0]} rows for a split of {len(split)} images")
        entry = self.path(backbone, split)
        self._sweep_once()
        self._create_parent(entry)
        with FileLock(self._lock_path(entry.name)):
            if not (entry / "meta.json").is_file():
                if entry.exists():
                    shutil.rmtree(entry)
                self._remove_debris(entry.name)
                partial = entry.with_name(entry.name + ".partial")
                try:
                    partial.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise storage_error(exc, partial, "create") from exc
                plan = self._plan(len(split))
                for start, stop in plan:
                    self._save_chunk(partial, (start, stop), features[start:stop])
                self._assemble(partial, entry, plan, backbone, split)
                self.stats.entries_extracted += 1
        return self._read(entry, len(split))

    # -- reading -----------------------------------------------------------------------------
    def _read(self, entry: Path, expected_rows: int) -> np.ndarray:
        features_file = entry / "features.npy"
        try:
            meta = json.loads((entry / "meta.json").read_text())
            shape, sha256 = tuple(meta["shape"]), meta["sha256"]
            stat = features_file.stat()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise self._damaged(entry, f"{type(exc).__name__}: {exc}") from exc
        stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if self._verified.get(features_file) != stamp:
            if stat.st_size != meta.get("bytes", stat.st_size):
                raise self._damaged(
                    entry, f"features.npy has {stat.st_size} bytes, not {meta['bytes']}"
                )
            if file_sha256(features_file) != sha256:
                raise self._damaged(entry, "features.npy does not match its recorded sha256")
            self._verified[features_file] = stamp
            self.stats.entries_verified += 1
        try:
            features = np.load(features_file, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise self._damaged(entry, f"{type(exc).__name__}: {exc}") from exc
        if features.shape != shape or features.shape[0] != expected_rows:
            raise self._damaged(
                entry,
                f"shape {features.shape}, expected {list(shape)} with {expected_rows} rows",
            )
        return features

    @staticmethod
    def _damaged(entry: Path, problem: str) -> DataError:
        return DataError(
            f"feature store entry {entry} is damaged ({problem}); delete it (`rm -r {entry}`) "
            "and rerun to re-extract it"
        )

    # -- debris from killed writers ----------------------------------------------------------
    def _lock_path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    def _remove_debris(self, key: str) -> None:
        """Remove ``key``'s temporary files; the caller holds ``key``'s lock, which every writer
        of them holds, so none of them is still being written."""
        for staging in self.root.glob(f".{key}.*{TEMP_SUFFIX}"):
            if staging.is_dir():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)
            self.stats.stale_temp_files_removed += 1
        self.stats.stale_temp_files_removed += remove_stale_temp_files(self.root / f"{key}.partial")

    def _sweep_once(self) -> None:
        """Once per store: remove the temporary files of every entry whose lock no live process
        holds (a killed extraction's staging folder can be as large as the entry)."""
        if self._swept or not self.root.is_dir():
            return
        self._swept = True
        keys = {p.name[1:].split(".", 1)[0] for p in self.root.glob(f".*{TEMP_SUFFIX}")}
        keys |= {p.name[: -len(".partial")] for p in self.root.glob("*.partial")}
        for key in sorted(keys):
            lock = FileLock(self._lock_path(key), timeout=0)
            try:
                lock.acquire()
            except (Timeout, OSError):
                continue  # a live process is writing this entry: its files are not debris
            try:
                self._remove_debris(key)
            finally:
                lock.release()

    # -- writing -----------------------------------------------------------------------------
    def _plan(self, n: int) -> list[tuple[int, int]]:
        return [(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]

    def _finished_chunks(self, partial: Path) -> dict[tuple[int, int], Path]:
        found = {}
        for path in partial.glob("chunk_*.npy"):
            match = _CHUNK_NAME.match(path.name)
            if match:
                found[(int(match[1]), int(match[2]))] = path
        return found

    def _extract(self, backbone: Backbone, split: Split, entry: Path, description: str) -> None:
        if entry.exists():  # an entry without meta.json is debris from outside the store: redo it
            shutil.rmtree(entry)
        partial = entry.with_name(entry.name + ".partial")
        try:
            partial.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, partial, "create") from exc
        n = len(split)
        plan = self._plan(n)
        finished = self._finished_chunks(partial)
        todo = [r for r in plan if r not in finished]
        bar = tqdm(
            total=n,
            initial=n - sum(stop - start for start, stop in todo),
            unit="img",
            desc=f"encode {description or split.images.__class__.__name__}",
            disable=not self.progress,
            leave=False,
        )
        indices = [i for start, stop in todo for i in range(start, stop)]
        loader = DataLoader(
            _PreprocessedImages(split, indices, backbone.preprocess),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
        )
        was_training = backbone.model.training
        backbone.model.eval()
        pending: list[np.ndarray] = []
        pending_rows = 0
        chunks = iter(todo)
        current = next(chunks, None)
        try:
            with torch.inference_mode():
                for pixels in loader:
                    rows = backbone.encode_images(pixels).float().cpu().numpy()
                    self.stats.images_encoded += len(pixels)
                    bar.update(len(pixels))
                    pending.append(rows)
                    pending_rows += len(rows)
                    # save every chunk that is complete: at most chunk_size images are at risk
                    while current is not None and pending_rows >= current[1] - current[0]:
                        size = current[1] - current[0]
                        block = np.concatenate(pending)
                        self._save_chunk(partial, current, block[:size])
                        pending = [block[size:]] if len(block) > size else []
                        pending_rows = len(block) - size
                        current = next(chunks, None)
        finally:
            backbone.model.train(was_training)
            bar.close()
        self._assemble(partial, entry, plan, backbone, split)

    @staticmethod
    def _save_chunk(partial: Path, rows: tuple[int, int], block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype="<f4")
        name = _chunk_name(*rows, _array_sha256(block))
        atomic_write(partial / name, lambda fh: np.save(fh, block))

    def _load_chunk(self, path: Path, entry: Path) -> np.ndarray:
        match = _CHUNK_NAME.match(path.name)
        assert match is not None
        try:
            block = np.load(path)
        except (OSError, ValueError) as exc:
            block = None
            problem = f"{type(exc).__name__}: {exc}"
        if block is not None and _array_sha256(block) == match[3]:
            return block
        if block is not None:
            problem = "its rows do not match the sha256 in its name"
        partial = path.parent
        raise DataError(
            f"feature store chunk {path} is damaged ({problem}); delete it (`rm {path}`) and rerun "
            f"to re-encode its images (the other chunks of {partial} are kept)"
        )

    def _assemble(
        self,
        partial: Path,
        entry: Path,
        plan: list[tuple[int, int]],
        backbone: Backbone,
        split: Split,
    ) -> None:
        finished = self._finished_chunks(partial)
        try:
            staging = make_temp_dir(self.root, entry.name)
        except OSError as exc:
            raise storage_error(exc, self.root, "write to") from exc
        features_file = staging / "features.npy"
        try:
            # written sequentially (not through a memory map, which a full disk turns into a
            # SIGBUS), hashed as it is written
            with features_file.open("wb") as fh:
                writer = _HashingWriter(fh)
                dim = None
                for rows in plan:
                    block = self._load_chunk(finished[rows], entry)
                    if dim is None:
                        dim = block.shape[1]
                        header = {
                            "descr": "<f4",
                            "fortran_order": False,
                            "shape": (len(split), dim),
                        }
                        np.lib.format.write_array_header_1_0(writer, header)
                    writer.write(block.data)
                fh.flush()
                os.fsync(fh.fileno())
            meta = {
                "format": STORE_FORMAT,
                "backbone": backbone.name,
                "backbone_fingerprint": backbone.fingerprint,
                "split_fingerprint": split.fingerprint(),
                "transform": backbone.preprocess.transform_id,
                "shape": [len(split), dim],
                "dtype": "float32",
                "bytes": writer.size,
                "sha256": writer.digest.hexdigest(),
            }
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
            try:
                os.rename(staging, entry)
            except OSError:
                if not (entry / "meta.json").is_file():  # another process did not finish it either
                    raise
        except StorageError:
            raise
        except OSError as exc:
            raise storage_error(exc, entry) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
