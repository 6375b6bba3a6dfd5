"""The exceptions driftless raises for bad input. Each message says what was wrong and where."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class DriftlessError(Exception):
    """Base class: an error the user can fix (bad config, missing file, corrupt data)."""


class ConfigError(DriftlessError, ValueError):
    """A configuration value or benchmark spec is invalid; the message names the field."""


class DataError(DriftlessError):
    """A dataset is missing, malformed or holds an unreadable file; the message names the path."""


class MissingModelError(DriftlessError, FileNotFoundError):
    """Model weights were not found where they were looked for."""


class ResumeError(DriftlessError):
    """A run cannot be resumed (no checkpoint, or one made with another configuration)."""


class StorageError(DriftlessError, OSError):
    """A file or directory could not be written or read (full disk, no permission, a path that
    runs through a regular file); the message names the path and what to do."""


class IntegrityError(DriftlessError):
    """A file driftless wrote does not hold what it wrote (its content hash differs): it was
    damaged on disk; the message names the file and how to recover."""


class MethodContractError(DriftlessError):
    """A method broke the Method protocol (e.g. ``logits`` of the wrong shape or not finite); the
    message names the method and what it returned."""


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic validation error as one line: every problem as ``<prefix><field path>: <what>``,
    separated by semicolons."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
