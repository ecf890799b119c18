"""Patient-level k-fold splits: every pullback of a patient lands in the same fold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def patient_folds(patients: Sequence[str], n_folds: int, seed: int,
                  weights: Sequence[float] | None = None) -> list[int]:
    """Fold index (0..n_folds-1) of each pullback, grouping pullbacks by patient.

    Patients are shuffled with `seed` and then assigned, heaviest first, to the fold with the
    least total weight so far (weight per pullback: its frame count, or 1). Deterministic for a
    given seed; no patient ever spans two folds.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    unique = sorted(set(patients))
    if len(unique) < n_folds:
        raise ValueError(f"{len(unique)} patients cannot fill {n_folds} folds")
    w = np.ones(len(patients)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(patients),):
        raise ValueError("weights must give one number per pullback")
    load = {p: 0.0 for p in unique}
    for patient, weight in zip(patients, w, strict=True):
        load[patient] += float(weight)
    rng = np.random.default_rng(seed)
    order = [unique[i] for i in rng.permutation(len(unique))]
    order.sort(key=lambda p: -load[p])  # stable: ties keep the shuffled order
    totals = np.zeros(n_folds)
    counts = np.zeros(n_folds, dtype=int)
    fold_of: dict[str, int] = {}
    for patient in order:
        fold = int(np.lexsort((totals, counts))[0])  # fewest patients first, then least weight
        fold_of[patient] = fold
        totals[fold] += load[patient]
        counts[fold] += 1
    return [fold_of[p] for p in patients]
