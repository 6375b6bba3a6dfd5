"""The run directory's guard: one process at a time, never clobbered, no debris left behind.

- A directory that already holds a run (``config.yaml``) is refused unless the run resumes it
  (``--resume``) or replaces it (``--overwrite``, which removes its checkpoints and results first).
- ``<out>/.lock`` is held for the whole run, so a second process on the same directory is refused
  rather than racing the first; holding it, the run removes the temporary files that killed
  writers left (``.<name>.<random>.tmp`` in the directory and in ``checkpoints/``).
- ``config.yaml`` is written by :meth:`RunDirectory.write_config` only once the whole
  configuration and its data have been validated, so a failing invocation never touches it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from driftless.atomic import atomic_write_bytes, remove_stale_temp_files, storage_error
from driftless.errors import ResumeError, StorageError

CONFIG_FILE = "config.yaml"
LOCK_FILE = ".lock"
#: what a run writes into its directory: removed by --overwrite
RUN_OUTPUTS = (
    "checkpoints",
    "results.json",
    "metrics.csv",
    *(
        f"{figure}.{ext}"
        for figure in ("curves", "datasets", "matrix-*")
        for ext in ("png", "pdf", "svg")
    ),
    "logs",
)


class RunDirectory:
    """Claims ``out`` for one run: use as a context manager around the run."""

    def __init__(self, out: Path, *, resume: bool = False, overwrite: bool = False):
        self.out = Path(out)
        self.resume = resume
        self.overwrite = overwrite
        self._lock: FileLock | None = None
        self.stale_temp_files_removed = 0

    @property
    def config_file(self) -> Path:
        return self.out / CONFIG_FILE

    def __enter__(self) -> RunDirectory:
        self._check_use()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:  # out itself is a regular file
            raise StorageError(
                f"cannot use {self.out} as the run directory: it is a regular file; choose "
                "another --out"
            ) from exc
        except OSError as exc:
            raise storage_error(exc, self.out, "create the run directory") from exc
        lock = FileLock(self.out / LOCK_FILE, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ResumeError(
                f"run directory {self.out} is in use by another driftless process; wait for it "
                "to finish, or choose another --out"
            ) from None
        except OSError as exc:
            raise storage_error(exc, self.out / LOCK_FILE) from exc
        self._lock = lock
        self.stale_temp_files_removed = remove_stale_temp_files(self.out) + remove_stale_temp_files(
            self.out / "checkpoints"
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_use(self) -> None:
        if self.resume:
            if not self.config_file.is_file():
                raise ResumeError(
                    f"--resume: {self.out} holds no {CONFIG_FILE}, so no run was started there "
                    "(a run records it once its configuration and data are validated); run the "
                    "command without --resume to start it"
                )
        elif self.config_file.is_file() and not self.overwrite:
            raise ResumeError(
                f"{self.out} already holds a run ({CONFIG_FILE}); continue it with --resume, "
                "choose another --out, or pass --overwrite to discard it and start afresh"
            )

    def _remove_previous_run(self) -> None:
        for pattern in RUN_OUTPUTS:
            for path in self.out.glob(pattern):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)

    def write_config(self, data: dict[str, Any]) -> None:
        """Write ``config.yaml`` (atomically) for a new run; with ``overwrite``, remove the previous
        run's outputs first. Call it once everything has been validated: an invocation that fails
        before leaves the directory as it was."""
        if self.resume:
            return
        if self.overwrite:
            self._remove_previous_run()
        atomic_write_bytes(self.config_file, yaml.safe_dump(data, sort_keys=True).encode())
