"""Agreement of a calcium map with the truth, per A-line (frames x A cells)."""

from __future__ import annotations

import numpy as np

from engine.errors import InputError


def aline_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, Dice, sensitivity and specificity over all (frame, A-line) cells.

    Dice, sensitivity and specificity are NaN-free: an empty denominator gives 1.0 (nothing to
    find and nothing found).
    """
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise InputError(f"truth map shape {truth.shape} does not match the analysis {predicted.shape}")
    tp = int(np.count_nonzero(predicted & truth))
    tn = int(np.count_nonzero(~predicted & ~truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))

    def ratio(num: int, den: int) -> float:
        return num / den if den else 1.0

    return {
        "accuracy": ratio(tp + tn, predicted.size),
        "dice": ratio(2 * tp, 2 * tp + fp + fn),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
    }
