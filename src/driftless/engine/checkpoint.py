"""Per-method checkpoints, written atomically after every task and read with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from driftless.atomic import atomic_write
from driftless.errors import ResumeError

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename: a reader sees the old
    checkpoint or the new one, never a partial file."""
    atomic_write(path, lambda fh: torch.save({"format": CHECKPOINT_FORMAT, **state}, fh))


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if there is none."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ResumeError(
            f"checkpoint {path} cannot be read ({exc}); delete it to restart that method"
        ) from exc
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(
            f"checkpoint {path} has format {state.get('format')}, expected {CHECKPOINT_FORMAT}"
        )
    return state
