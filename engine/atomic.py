"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Every file the project publishes (reports, weights, model cards, ONNX graphs, engines, caches)
is written through `atomic_path`: the writer fills a temporary file in the same folder
(`.NAME.PID.partial.SUFFIX`, the suffix kept so that writers which pick a format by suffix, such
as `np.savez` and `savefig`, still do), the data is flushed to disk, and `os.replace` puts it in
place. If writing fails, the temporary file is removed and the old file is left untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PARTIAL_MARK = ".partial"


def partial_path(path: Path) -> Path:
    """The temporary name beside `path` that `atomic_path` writes first."""
    return path.with_name(f".{path.stem}.{os.getpid()}{PARTIAL_MARK}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        yield partial
        _fsync_file(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def write_text(path: Path | str, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode())


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
