"""The exceptions driftless raises for bad input. Each message says what was wrong and where."""


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


class MethodContractError(DriftlessError):
    """A method broke the Method protocol (e.g. ``logits`` of the wrong shape or not finite); the
    message names the method and what it returned."""
