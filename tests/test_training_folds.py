"""Patient-level folds: a patient's pullbacks never span two folds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.folds import patient_folds


@settings(max_examples=60, deadline=None)
@given(
    patients=st.lists(st.integers(0, 40), min_size=5, max_size=80).filter(lambda p: len(set(p)) >= 5),
    seed=st.integers(0, 10_000),
)
def test_no_patient_in_two_folds_and_every_fold_used(patients: list[int], seed: int) -> None:
    names = [f"patient-{p}" for p in patients]
    folds = patient_folds(names, 5, seed)
    assert len(folds) == len(names)
    fold_of_patient: dict[str, int] = {}
    for name, fold in zip(names, folds, strict=True):
        assert fold_of_patient.setdefault(name, fold) == fold
    assert set(folds) == set(range(5))
    per_fold = [sum(1 for f in set(fold_of_patient.values()) if f == k) for k in range(5)]
    counts = [list(fold_of_patient.values()).count(k) for k in range(5)]
    assert max(counts) - min(counts) <= 1, per_fold


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    names = [f"p{i // 2}" for i in range(40)]
    assert patient_folds(names, 5, 3) == patient_folds(names, 5, 3)
    assert patient_folds(names, 5, 3) != patient_folds(names, 5, 4)


def test_frame_weights_balance_folds() -> None:
    names = [f"p{i}" for i in range(20)]
    weights = [100 + 10 * i for i in range(20)]
    folds = patient_folds(names, 5, 0, weights=weights)
    totals = [sum(w for w, f in zip(weights, folds, strict=True) if f == k) for k in range(5)]
    assert max(totals) / min(totals) < 1.2


def test_too_few_patients_is_an_error() -> None:
    with pytest.raises(ValueError, match="patients"):
        patient_folds(["a", "a", "b"], 5, 0)
