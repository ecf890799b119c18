"""Simulator cohort -> polar cache through the product's own DICOM reader and polar sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.dicom import open_pullback
from engine.geometry import PolarSampler
from engine.model.spec import InputSpec
from training.cohort import cache_cohort_dir, prepare_cache
from training.folds import patient_folds
from training.presets import CohortPlan

SPEC = InputSpec(n_alines=120, n_depth=64, depth_spacing_mm=0.08)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.simulator.cohort import generate_cohort

    root = tmp_path_factory.mktemp("cohort")
    generate_cohort(root, 3, seed=5, n_frames=4, image_size=128)
    return root


def test_cache_holds_what_the_engine_would_sample(cohort: Path, tmp_path: Path) -> None:
    cache = cache_cohort_dir(cohort, tmp_path / "cache", SPEC)
    assert len(cache) >= 3
    first = cache.pullbacks[0]
    with open_pullback(cohort / first.source) as pullback:
        frames = pullback.read_frames(0, first.n_frames)
        cal = pullback.info.calibration
    expected = PolarSampler(frames.shape[1:], cal.center_rc, cal.pixel_spacing_mm, SPEC)(frames)
    cached = cache.polar(0).astype(np.float32) / 255.0
    assert cached.shape == expected.shape == (first.n_frames, 64, 120)
    assert np.max(np.abs(cached - expected)) <= 0.5 / 255 + 1e-6
    assert cache.labels(0).shape == (first.n_frames, 120)


def test_patients_are_case_numbers_and_folds_keep_them_together(cohort: Path, tmp_path: Path) -> None:
    cache = cache_cohort_dir(cohort, tmp_path / "cache", SPEC)
    assert all(p.startswith("case") for p in cache.patients)
    assert len(set(cache.patients)) == 3
    folds = patient_folds(cache.patients, 3, seed=0)
    for patient in set(cache.patients):
        assert len({f for f, p in zip(folds, cache.patients, strict=True) if p == patient}) == 1


def test_a_work_dir_refuses_a_different_plan(tmp_path: Path) -> None:
    from engine.errors import InputError

    prepare_cache(CohortPlan("synthetic", 2, seed=1, n_frames=4), tmp_path, SPEC)
    with pytest.raises(InputError, match="different plan"):
        prepare_cache(CohortPlan("synthetic", 2, seed=2, n_frames=4), tmp_path, SPEC)


def test_confounder_table_counts_false_calls_per_kind(cohort: Path, tmp_path: Path) -> None:
    from training.confounders import confounder_table

    cache = cache_cohort_dir(cohort, tmp_path / "cache", SPEC)
    everything = {i: np.ones((p.n_frames, SPEC.n_alines), np.float32) for i, p in enumerate(cache.pullbacks)}
    nothing = {i: np.zeros_like(m) for i, m in everything.items()}
    calls_all = confounder_table(cache, cohort, everything, (3, 5))
    calls_none = confounder_table(cache, cohort, nothing, (3, 5))
    assert "guidewire" in calls_all
    for kind, row in calls_all.items():
        assert row["frames"] > 0 and row["cells"] > 0
        assert row["fp_rate"]["raw"] == row["fp_rate"]["filtered"] == 1.0
        assert calls_none[kind]["fp_rate"]["filtered"] == 0.0
    assert cache.hard_frames(0) is not None  # hard-negative frames recorded for training
