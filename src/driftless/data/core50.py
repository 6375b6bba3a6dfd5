"""CORe50 (Lomonaco and Maltoni, "CORe50: a new dataset and benchmark for continuous object
recognition", CoRL 2017) at 128 × 128, in either layout its site distributes:

- PNG: ``core50_128x128/s<session>/o<object>/C_<ss>_<oo>_<fff>.png`` (11 sessions × 50 objects);
- NumPy: ``core50_imgs.npz`` (one uint8 array ``x`` of shape (164866, 128, 128, 3)) with
  ``paths.pkl``, the list of each row's relative PNG path. The array is memory-mapped when the
  archive stores it uncompressed (as distributed), so 8 GB of pixels never sit in memory; the path
  list is unpickled with every class lookup refused, so the file can hold plain lists and strings
  only, never code.

Every session is a domain (a background and lighting). As S-Prompts and Continual-CLIP use it for
domain-incremental learning, sessions 3, 7 and 10 are the test set and the other eight are the
training domains, one per task: splits ``s<k>/train`` for training sessions, ``s<k>/test`` for test
sessions, and ``train``/``test`` for their unions. Classes: the 50 objects (``labels="objects"``,
S-Prompts' protocol) named "<category> <n>", or the 10 categories (``labels="categories"``).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.images import FileImages
from driftless.data.ondisk import find_folder, malformed
from driftless.errors import ConfigError, DataError

NAME = "core50"
SESSIONS = 11
OBJECTS = 50
#: the ten categories in object order (o1–o5 are plug adapters, o6–o10 mobile phones, …)
CATEGORIES = (
    "plug adapter", "mobile phone", "scissors", "light bulb", "can",
    "glasses", "ball", "marker", "cup", "remote control",
)  # fmt: skip
TEST_SESSIONS = (3, 7, 10)
_PATH = re.compile(r"(?:^|/)s(\d+)/o(\d+)/[^/]+\.png$")


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles plain containers and strings only: any class or function lookup is refused."""

    def find_class(self, module: str, name: str) -> None:  # type: ignore[override]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a path list")


def read_path_list(path: Path) -> list[str]:
    """``paths.pkl``: the relative PNG path of each row of ``core50_imgs.npz``."""
    try:
        with path.open("rb") as fh:
            paths = _NoGlobalsUnpickler(fh, encoding="latin1").load()
    except Exception as exc:  # a damaged or foreign pickle fails with many exception types
        raise malformed(NAME, path, f"not a readable list of paths ({exc})") from exc
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise malformed(NAME, path, "does not hold a list of path strings")
    return paths


def _stored_member(archive: Path, member: str) -> np.ndarray | None:
    """A memory map of an uncompressed ``.npy`` member of a ``.npz``, or None when the member is
    compressed (and must be read whole)."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with archive.open("rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        name_length = int.from_bytes(local[26:28], "little")
        extra_length = int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    if fortran:
        return None
    return np.memmap(archive, dtype=dtype, mode="r", offset=offset, shape=shape)


def read_npz_images(archive: Path) -> np.ndarray:
    """The ``x`` array of ``core50_imgs.npz``: memory-mapped when stored, else read whole."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
        if "x.npy" not in names:
            raise malformed(NAME, archive, f"holds {names}, not the array x")
        pixels = _stored_member(archive, "x.npy")
        if pixels is None:
            with np.load(archive) as content:
                pixels = content["x"]
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise malformed(NAME, archive, f"not a readable .npz ({exc})") from exc
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise malformed(
            NAME, archive, f"x has {pixels.dtype} {pixels.shape}, not (N, H, W, 3) uint8"
        )
    return pixels


class RowImages:
    """Some rows of a large uint8 (N, H, W, 3) array (a memory map), read one at a time."""

    def __init__(self, pixels: np.ndarray, rows: np.ndarray, key: str):
        self.pixels = pixels
        self.rows = np.asarray(rows, dtype=np.int64)
        self._key = key

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB."""
        return Image.fromarray(np.asarray(self.pixels[self.rows[index]]))

    def fingerprint(self) -> str:
        """The archive's identity (path list digest and array shape) and the rows taken: hashing
        gigabytes of pixels on every run would cost more than reading them."""
        digest = hashlib.sha256(f"rows/1\0{self._key}\0{self.pixels.shape}".encode())
        digest.update(self.rows.tobytes())
        return digest.hexdigest()


def _parse(relative: str, where: Path) -> tuple[int, int]:
    match = _PATH.search(relative.replace("\\", "/"))
    if not match:
        raise malformed(NAME, where, f"{relative!r} is not a s<k>/o<n>/<file>.png path")
    session, obj = int(match.group(1)), int(match.group(2))
    if not (1 <= session <= SESSIONS and 1 <= obj <= OBJECTS):
        raise malformed(NAME, where, f"{relative!r}: session or object out of range")
    return session, obj


def _png_samples(folder: Path) -> list[tuple[int, int, Path]]:
    samples = []
    for session_dir in sorted(folder.glob("s*")):
        for obj_dir in sorted(session_dir.glob("o*")):
            for path in sorted(obj_dir.glob("*.png")):
                session, obj = _parse(path.relative_to(folder).as_posix(), path)
                samples.append((session, obj, path))
    if not samples:
        raise malformed(NAME, folder, "holds no s<k>/o<n>/*.png images")
    return samples


def core50(
    root: str | os.PathLike[str],
    labels: Literal["objects", "categories"] = "objects",
    test_sessions: Sequence[int] = TEST_SESSIONS,
    layout: Literal["auto", "png", "npz"] = "auto",
    templates: str | Sequence[str] | None = None,
) -> Dataset:
    """CORe50 at 128 × 128 as 11 session domains (see the module docstring). ``layout``: ``png``
    reads ``core50_128x128/``, ``npz`` reads ``core50_imgs.npz`` + ``paths.pkl``, ``auto`` prefers
    the PNG folders. Template: ``a photo of a {}.``"""
    if labels not in ("objects", "categories"):
        raise ConfigError(f"labels: must be objects or categories, not {labels!r}")
    if layout not in ("auto", "png", "npz"):
        raise ConfigError(f"layout: must be auto, png or npz, not {layout!r}")
    tests = {int(s) for s in test_sessions}
    if not tests or not tests <= set(range(1, SESSIONS + 1)):
        raise ConfigError(f"test_sessions: must be sessions in 1..{SESSIONS}, got {sorted(tests)}")
    markers = {"auto": ("core50_128x128", "core50_imgs.npz"), "png": ("core50_128x128",),
               "npz": ("core50_imgs.npz",)}[layout]  # fmt: skip
    folder = find_folder(NAME, root, ["core50", "CORe50", "."], markers)
    if (folder / "core50_128x128").is_dir() and layout != "npz":
        found = _png_samples(folder / "core50_128x128")
        sessions = np.array([s for s, _, _ in found])
        objects = np.array([o for _, o, _ in found])
        paths = [p for _, _, p in found]

        def source(rows: np.ndarray) -> FileImages:
            """File images of ``rows``."""
            return FileImages([paths[i] for i in rows], folder)

        layout_used = "png"
    else:
        pixels = read_npz_images(folder / "core50_imgs.npz")
        relative = read_path_list(folder / "paths.pkl")
        if len(relative) != len(pixels):
            raise malformed(
                NAME, folder, f"paths.pkl lists {len(relative)} paths for {len(pixels)} images"
            )
        parsed = [_parse(r, folder / "paths.pkl") for r in relative]
        sessions = np.array([s for s, _ in parsed])
        objects = np.array([o for _, o in parsed])
        key = hashlib.sha256("\n".join(relative).encode()).hexdigest()

        def source(rows: np.ndarray) -> RowImages:
            """Rows of the memory-mapped array."""
            return RowImages(pixels, rows, key)

        layout_used = "npz"
    label_of = objects - 1 if labels == "objects" else (objects - 1) // 5
    splits: dict[str, Split] = {}
    for session in range(1, SESSIONS + 1):
        rows = np.flatnonzero(sessions == session)
        if len(rows):
            kind = "test" if session in tests else "train"
            splits[f"s{session}/{kind}"] = Split(source(rows), label_of[rows])
    for kind, chosen in (("train", ~np.isin(sessions, list(tests))), ("test", np.isin(sessions, list(tests)))):  # fmt: skip
        rows = np.flatnonzero(chosen)
        if not len(rows):
            raise DataError(f"CORe50 at {folder}: no image of the {kind} sessions")
        splits[kind] = Split(source(rows), label_of[rows])
    names = (
        [f"{CATEGORIES[i // 5]} {i % 5 + 1}" for i in range(OBJECTS)]
        if labels == "objects"
        else list(CATEGORIES)
    )
    return Dataset(
        NAME,
        tuple(names),
        splits,
        resolve_templates(NAME, templates),
        {"folder": str(folder), "layout": layout_used},
    )
