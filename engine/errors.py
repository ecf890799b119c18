"""The project's few exception types.

`InputError` means the user's input (a file, a message, an option) is wrong: the command line
prints its message on one line and exits with status 2. Anything else that escapes is an
internal error (status 1). Messages name the file or stream and say what was wrong.
"""

from __future__ import annotations


class IvusError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(IvusError):
    """Bad input or bad usage: a corrupt file, a malformed message, an impossible option."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class InvalidPullbackError(InputError):
    """A file that cannot be read as an IVUS pullback (not DICOM, truncated, wrong modality...)."""


class BackendUnavailableError(InputError):
    """A requested inference backend or device is not installed or not present."""


class InternalError(IvusError):
    """A failure inside ivuscal itself, not caused by the input."""
