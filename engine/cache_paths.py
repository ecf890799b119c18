"""Where ivuscal keeps files it can rebuild: ONNX exports, TensorRT engines, generated pullbacks.

The folder is `$IVUSCAL_CACHE` when set, else the platform's user cache folder for ivuscal
(platformdirs: `$XDG_CACHE_HOME/ivuscal`, else `~/.cache/ivuscal` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from engine.errors import InputError


def cache_dir() -> Path:
    """The cache folder (created on demand by `cache_subdir`)."""
    if os.environ.get("IVUSCAL_CACHE"):
        return Path(os.environ["IVUSCAL_CACHE"]).expanduser()
    return Path(platformdirs.user_cache_dir("ivuscal", appauthor=False))


def cache_subdir(name: str) -> Path:
    """A writable subfolder of the cache; a clear InputError when it cannot be made."""
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the cache folder ({error}); set IVUSCAL_CACHE to a writable folder",
                         source=str(folder)) from error
    return folder
