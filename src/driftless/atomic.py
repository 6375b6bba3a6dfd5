"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Temporary files are named ``.<name>.<random>.tmp`` beside their target; :func:`remove_stale_temp_files`
removes those left by killed writers. Files and directories are created with the permissions the
user's umask gives (``0o666 & ~umask``, ``0o777 & ~umask``), not the private 0600/0700 of
``tempfile``, so a cache shared by a team stays readable.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from driftless.errors import StorageError

TEMP_SUFFIX = ".tmp"


def current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it (``os.umask`` can only
    be read by setting it, which would race with threads creating files meanwhile)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the current umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Permissions of a new directory under the current umask."""
    return 0o777 & ~current_umask()


def make_temp_dir(parent: Path, name: str) -> Path:
    """A fresh ``parent/.<name>.<random>.tmp`` directory with the umask's permissions."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=TEMP_SUFFIX))
    os.chmod(path, dir_mode())
    return path


def storage_error(exc: OSError, path: Path | None, doing: str = "write") -> StorageError:
    """``exc`` as one sentence that names ``path`` (when known) and says what to do."""
    hint = {
        errno.ENOSPC: "the disk is full: free space there, or point --out / --cache-dir elsewhere",
        errno.EDQUOT: "the disk quota is exhausted: free space, or point --out / --cache-dir elsewhere",
        errno.EACCES: "no permission: choose a directory you can write to",
        errno.EPERM: "no permission: choose a directory you can write to",
        errno.EROFS: "the file system is read-only: choose another directory",
        errno.ENOTDIR: "a component of the path is a regular file, not a directory: choose another path",
        errno.EEXIST: "a regular file is in the way: choose another path",
    }.get(exc.errno or 0, "check the path and the disk")
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f"cannot {doing} {path}" if path is not None else "a file system operation failed"
    error = StorageError(f"{where}: {reason}; {hint}")
    error.errno = exc.errno
    return error


def _open_temp(fd: int, path: Path) -> BinaryIO:
    """The temporary file of ``path`` opened for writing (a seam: the reliability tests put a full
    disk here)."""
    return os.fdopen(fd, "wb")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over
    ``path``. On any error the temporary file is removed and ``path`` is untouched; an ``OSError``
    (a full disk, no permission) becomes a :class:`StorageError` naming ``path``."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        with _open_temp(fd, path) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, path) from exc
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(data))


def temp_files(folder: Path) -> Iterable[Path]:
    """The temporary files and folders (``.<name>.<random>.tmp``) directly in ``folder``."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)]


def remove_stale_temp_files(folder: Path) -> int:
    """Remove ``folder``'s temporary files and folders. Call it only while holding the lock that
    every writer to ``folder`` holds, so that none of them is still being written. Returns how
    many were removed."""
    removed = 0
    for path in temp_files(folder):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
