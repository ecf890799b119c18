"""Array-namespace helpers: one implementation of each algorithm runs on NumPy or CuPy.

Array code takes `xp` (the `numpy` or `cupy` module) and never imports CuPy itself.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def cupy_or_none() -> ModuleType | None:
    """The `cupy` module when it is installed and a CUDA device is usable, else None."""
    try:
        import cupy  # optional GPU dependency

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:  # ImportError, CUDA driver errors: no usable GPU
        return None


def namespace_of(array: Any) -> ModuleType:
    """The array namespace (numpy or cupy) that owns `array`."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


def get_namespace(name: str) -> ModuleType:
    """`"numpy"` or `"cupy"` to its module; raises if CuPy or a GPU is missing."""
    if name == "numpy":
        return np
    if name == "cupy":
        cp = cupy_or_none()
        if cp is None:
            from engine.errors import BackendUnavailableError

            raise BackendUnavailableError("CuPy with a CUDA GPU is required for the 'cupy' array namespace")
        return cp
    raise ValueError(f"unknown array namespace {name!r} (expected 'numpy' or 'cupy')")


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    if hasattr(array, "get") and namespace_of(array) is not np:
        return array.get()
    return np.asarray(array)
