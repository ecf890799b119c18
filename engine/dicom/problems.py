"""Building the one-line `InvalidPullbackError`s of the DICOM reader."""

from __future__ import annotations

from pathlib import Path

from engine.errors import InvalidPullbackError


def fail(path: Path, message: str) -> InvalidPullbackError:
    """The error for `path` (the caller raises it)."""
    return InvalidPullbackError(message, source=str(path))


def describe_error(error: BaseException) -> str:
    """`Type: message` on one line (library messages may span several)."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"
