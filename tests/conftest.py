"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.model.weights import LoadedEnsemble, load_ensemble
from engine.runtimes.synthetic import random_ensemble


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ONNX cache folder and one random ensemble for the whole session (IVUSCAL_CACHE points there)."""
    base = tmp_path_factory.getbasetemp() / "runtimes-shared"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IVUSCAL_CACHE", str(base / "cache"))
        yield base


@pytest.fixture(scope="module")
def ensemble(model_cache: Path) -> LoadedEnsemble:
    """A full-size, randomly initialised 5-member ensemble, written once and reloaded after."""
    path = model_cache / "model" / "ensemble.safetensors"
    return load_ensemble(path) if path.is_file() else random_ensemble(path, n_members=5, seed=0)
