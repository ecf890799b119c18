"""Training data on disk: generate a cohort, then cache it as polar frames the way the product sees them.

For the simulator, frames go through what `ivuscal analyze` uses - `engine.dicom` reads the
cohort's DICOM files (grayscale, RGB, JPEG exports alike) and `engine.geometry.PolarSampler`
samples them onto the network's polar grid - so training and inference share preprocessing.
The truth comes from the simulator's truth files, as calcium per A-line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.model.spec import InputSpec
from engine.progress import progress
from training.cache import INDEX, CacheWriter, PolarCache
from training.presets import CohortPlan
from training.synthetic import synthetic_pullback

log = logging.getLogger("training")
PLAN_FILE = "plan.json"


def prepare_cache(plan: CohortPlan, root: Path, spec: InputSpec, quiet: bool = True) -> PolarCache:
    """The polar cache of `plan` under `root`, generating and caching what is missing."""
    root.mkdir(parents=True, exist_ok=True)
    plan_file = root / PLAN_FILE
    wanted = {"plan": plan.to_dict(), "spec": spec.to_dict()}
    if plan_file.is_file() and json.loads(plan_file.read_text()) != wanted:
        raise InputError("holds data of a different plan; use a fresh work directory", source=str(root))
    plan_file.write_text(json.dumps(wanted, indent=1) + "\n")
    cache_dir = root / "cache"
    if (cache_dir / INDEX).is_file():
        return PolarCache(cache_dir)
    if plan.source == "synthetic":
        return _synthetic_cache(plan, cache_dir, spec)
    if plan.source == "simulator":
        cohort_dir = root / "cohort"
        entries = generate_simulator_cohort(plan, cohort_dir, quiet)
        return cache_simulator_cohort(entries, cache_dir, spec, quiet)
    raise InputError(f"unknown data source {plan.source!r}", source="train")


def _synthetic_cache(plan: CohortPlan, cache_dir: Path, spec: InputSpec) -> PolarCache:
    rng = np.random.default_rng(plan.seed)
    writer = CacheWriter(cache_dir, spec)
    for patient in range(plan.n_patients):
        for run in range(int(rng.integers(plan.pullbacks_per_patient[0], plan.pullbacks_per_patient[1] + 1))):
            n_frames = int(rng.integers(plan.n_frames[0], plan.n_frames[1] + 1))
            polar, labels = synthetic_pullback(rng, n_frames, spec)
            writer.add(f"p{patient:03d}_r{run}", f"patient{patient:03d}", polar, labels, source="synthetic")
    return writer.close()
