"""The ensemble a benchmark runs: the given weights, the trained default, or a random stand-in.

Speed does not depend on the values of the weights, so before the trained default exists the
benchmark runs a randomly initialised five-member ensemble of the same architecture
(`engine.runtimes.synthetic.random_ensemble`, outputs spread over (0, 1) so that the filter and
the arcs have work to do), cached as safetensors, and says so in its results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.model.weights import DEFAULT_WEIGHTS, LoadedEnsemble, load_ensemble
from engine.runtimes.synthetic import random_ensemble

RANDOM_NAME = "random-ensemble.safetensors"
N_MEMBERS = 5


@dataclass(frozen=True)
class BenchModel:
    """The loaded ensemble, its weights file and a one-line description for the results."""

    ensemble: LoadedEnsemble
    path: Path
    description: str


def bench_model(cache_dir: Path, weights: Path | None = None) -> BenchModel:
    """`weights` if given, else the trained default when shipped, else a cached random ensemble."""
    if weights is not None:
        ensemble = load_ensemble(weights)
        return BenchModel(ensemble, Path(weights), f"given weights {ensemble.model_id}")
    if DEFAULT_WEIGHTS.is_file():
        ensemble = load_ensemble(DEFAULT_WEIGHTS)
        return BenchModel(ensemble, DEFAULT_WEIGHTS, f"trained default {ensemble.model_id}")
    path = Path(cache_dir) / RANDOM_NAME
    if not path.is_file():
        random_ensemble(path, n_members=N_MEMBERS)
    ensemble = load_ensemble(path)
    return BenchModel(ensemble, path,
                      f"randomly initialised {len(ensemble.models)}-member ensemble (trained default absent)")
