"""Per-method checkpoints, written atomically after every task and read with ``weights_only=True``.

Each checkpoint carries the content hash of its state (:func:`driftless.integrity.content_digest`),
computed once when it is written and checked when it is read: a damaged file is refused with the
way back, never resumed into wrong numbers. The checkpoint before the last is kept beside it
(``<method>.prev.pt``), so that a damaged checkpoint costs one task, not the run.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from driftless.atomic import TEMP_SUFFIX, atomic_write_bytes
from driftless.errors import IntegrityError, ResumeError
from driftless.integrity import content_digest

CHECKPOINT_FORMAT = 2
_DIGEST_KEY = "content_sha256"


def previous_path(path: Path) -> Path:
    """Where the checkpoint before ``path``'s is kept: ``<method>.prev.pt``."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: Path, state: dict[str, Any], keep_previous: bool = True) -> None:
    """Write ``state`` with its content hash to ``path`` through a temporary file and a rename: a
    reader sees the old checkpoint or the new one, never a partial file. With ``keep_previous``
    the checkpoint it replaces stays as :func:`previous_path`."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    payload[_DIGEST_KEY] = content_digest(payload)
    # serialized in memory first: a full disk then fails as a plain write naming the file, not
    # deep inside torch's zip writer ("unexpected pos ...")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    if keep_previous and path.is_file():
        _keep_as_previous(path)
    atomic_write_bytes(path, buffer.getbuffer())


def _keep_as_previous(path: Path) -> None:
    """Make ``previous_path(path)`` a copy of ``path`` (a hard link where the file system has them);
    ``path`` itself exists throughout."""
    previous = previous_path(path)
    staged = path.with_name(f".{previous.name}.{os.getpid()}{TEMP_SUFFIX}")
    staged.unlink(missing_ok=True)
    try:
        os.link(path, staged)
    except OSError:
        shutil.copyfile(path, staged)
    os.replace(staged, previous)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.split("  (Could this error message be improved?")[0]  # torch's boilerplate
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_verified(path: Path) -> dict[str, Any]:
    """The state in ``path``; ResumeError if it cannot be read, IntegrityError if its content hash
    differs from the one it was written with."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file fails with many exception types
        raise ResumeError(f"cannot be read ({_reason(exc)}): it is truncated or damaged") from exc
    if not isinstance(state, dict):
        raise ResumeError(f"holds a {type(state).__name__}, not a driftless checkpoint")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(
            f"has format {state.get('format')!r}, expected {CHECKPOINT_FORMAT} (written by another "
            "driftless version)"
        )
    saved = state.pop(_DIGEST_KEY, None)
    if saved != content_digest(state):
        raise IntegrityError(
            "does not hold what was written (its content hash differs): it was damaged on disk"
        )
    return state


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` after checking its content hash, or None if there is none. A
    damaged checkpoint raises :class:`ResumeError` naming the file and the way back."""
    if not path.is_file():
        return None
    try:
        return _read_verified(path)
    except (ResumeError, IntegrityError) as exc:
        problem = str(exc)
    previous = previous_path(path)
    try:
        tasks = _read_verified(previous)["tasks_done"] if previous.is_file() else None
    except (ResumeError, IntegrityError):
        tasks = None
    if tasks is not None:
        way_back = (
            f"the checkpoint before it is intact ({tasks} tasks done): `mv {previous} {path}` "
            f"and rerun with --resume to redo the tasks after it, or delete {path} to restart "
            "this method from its first task"
        )
    else:
        way_back = f"delete {path} to restart this method from its first task"
    raise ResumeError(
        f"checkpoint {path} {problem}; {way_back} (other methods keep their progress)"
    )
