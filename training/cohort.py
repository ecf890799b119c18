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

from engine.dicom import open_pullback
from engine.errors import InputError
from engine.geometry import PolarSampler
from engine.json_output import json_ready, write_json
from engine.model.spec import InputSpec
from engine.progress import progress
from engine.truth import read_truth
from training.cache import HARD_NEGATIVE_KINDS, INDEX, CacheWriter, PolarCache, to_uint8
from training.presets import CohortPlan
from training.synthetic import synthetic_pullback

log = logging.getLogger("training")
PLAN_FILE = "plan.json"


def prepare_cache(plan: CohortPlan, root: Path, spec: InputSpec, quiet: bool = True, exact: bool = False) -> PolarCache:
    """The polar cache of `plan` under `root`, generating and caching what is missing.

    `exact` chooses exact truth (evaluation) over annotated labels (training), see
    `cache_cohort_dir`.
    """
    root.mkdir(parents=True, exist_ok=True)
    plan_file = root / PLAN_FILE
    wanted = {"plan": plan.to_dict(), "spec": spec.to_dict(), "exact_labels": exact}
    if plan_file.is_file() and json.loads(plan_file.read_text()) != json_ready(wanted):
        raise InputError("holds data of a different plan; use a fresh work directory", source=str(root))
    write_json(plan_file, wanted, indent=1)
    cache_dir = root / "cache"
    if (cache_dir / INDEX).is_file():
        return PolarCache(cache_dir)
    if plan.source == "synthetic":
        return _synthetic_cache(plan, cache_dir, spec)
    if plan.source == "simulator":
        cohort_dir = generate_simulator_cohort(plan, root / "cohort", quiet)
        return cache_cohort_dir(cohort_dir, cache_dir, spec, quiet, exact=exact)
    raise InputError(f"unknown data source {plan.source!r}", source="train")


def _synthetic_cache(plan: CohortPlan, cache_dir: Path, spec: InputSpec) -> PolarCache:
    """One or two synthetic pullbacks per patient (training.synthetic)."""
    rng = np.random.default_rng(plan.seed)
    writer = CacheWriter(cache_dir, spec)
    for patient in range(plan.n_patients):
        for run in range(int(rng.integers(1, 3))):
            polar, labels = synthetic_pullback(rng, plan.n_frames, spec)
            writer.add(f"p{patient:03d}_r{run}", f"patient{patient:03d}", polar, labels, source="synthetic")
    return writer.close()


def generate_simulator_cohort(plan: CohortPlan, cohort_dir: Path, quiet: bool = True) -> Path:
    """The simulator cohort of `plan` in `cohort_dir` (generated unless its manifest exists)."""
    from tools.simulator.cohort import MANIFEST_NAME, generate_cohort

    manifest = cohort_dir / MANIFEST_NAME
    if not manifest.is_file():
        log.info("generating simulator cohort: %d patients, seed %d", plan.n_patients, plan.seed)
        fixed: dict = {"appearance": plan.appearance}
        if plan.devices is not None:
            fixed["devices"] = tuple(plan.devices)
        generate_cohort(cohort_dir, plan.n_patients, plan.seed, n_frames=plan.n_frames, quiet=quiet, **fixed)
    return cohort_dir


def cache_cohort_dir(
    cohort_dir: Path, cache_dir: Path, spec: InputSpec, quiet: bool = True, exact: bool = True
) -> PolarCache:
    """Cache a simulator cohort (`cohort.json` + DICOM + truth) as polar frames and labels.

    `exact=False` takes the labels as annotated (with the simulator's label noise when the
    cohort has it) - what training learns from; `exact=True` takes the exact truth - what
    evaluation scores against. An existing cache is reused.
    """
    from tools.simulator.cohort import MANIFEST_NAME

    if (cache_dir / INDEX).is_file():
        return PolarCache(cache_dir)
    manifest_path = cohort_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InputError(f"not a simulator cohort ({MANIFEST_NAME} missing)", source=str(cohort_dir))
    manifest = json.loads(manifest_path.read_text())
    entries = [(patient["case"], run) for patient in manifest["patients"] for run in patient["pullbacks"]]
    writer = CacheWriter(cache_dir, spec)
    with progress("cache", total=len(entries), quiet=quiet) as bar:
        for case, run in entries:
            dicom = cohort_dir / run["dicom"]
            truth = read_truth(dicom)
            labels = truth.labels(spec.n_alines, exact=exact)
            hard = np.zeros(truth.n_frames, dtype=bool)
            for kind in HARD_NEGATIVE_KINDS:
                hard |= truth.confounder_mask(kind).any(axis=1)
            key = Path(run["dicom"]).stem
            _cache_dicom(writer, dicom, key, f"case{case:04d}", labels, spec, hard)
            bar.advance()
    return writer.close()


def _cache_dicom(writer: CacheWriter, dicom: Path, key: str, patient: str, labels: np.ndarray, spec: InputSpec,
                 hard: np.ndarray | None = None) -> None:
    """Read a pullback through engine.dicom, sample it with engine.geometry, store it as uint8 polar."""
    with open_pullback(dicom) as pullback:
        info = pullback.info
        if labels.shape[0] != info.n_frames:
            raise InputError(f"truth has {labels.shape[0]} frames, the DICOM {info.n_frames}", source=str(dicom))
        cal = info.calibration
        sampler = PolarSampler((info.rows, info.cols), cal.center_rc, cal.pixel_spacing_mm, spec)
        out = writer.begin(key, patient, info.n_frames, source=dicom.name)
        buffer = np.empty((64, spec.n_depth, spec.n_alines), np.float32)
        for start, frames in pullback.iter_chunks(64):
            polar = sampler.sample_into(frames, buffer[: len(frames)])
            out[start : start + len(frames)] = to_uint8(polar)
    writer.end(out, labels, hard)
