"""The project's one implementation of A-line metrics against truth: confusion counts, accuracy,
Dice, sensitivity, specificity, arc error (docs/conventions.md, "Metrics").

Every consumer - `analyze --truth`, `evaluate`, `tune-filter`, training validation, the bench -
counts (frame, A-line) cells with `Confusion` and reads ratios from `Confusion.metrics`. A ratio
whose denominator is empty (Dice with no calcium in truth or prediction, sensitivity without
calcium, ...) is undefined: NaN in Python, `null` in JSON, skipped by `mean_defined`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np

from engine.errors import InputError


@dataclass
class Confusion:
    """Counts of A-lines (true/false positives/negatives); add pullbacks with `+=`."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    arc_error_sum: float = 0.0
    n_frames: int = 0

    @classmethod
    def of(cls, predicted: np.ndarray, truth: np.ndarray) -> Confusion:
        """Counts for bool maps (frames, A) of prediction and truth (InputError when they differ)."""
        predicted = np.asarray(predicted, dtype=bool)
        truth = np.asarray(truth, dtype=bool)
        if predicted.shape != truth.shape or predicted.ndim != 2:
            raise InputError(f"prediction {predicted.shape} and truth {truth.shape} must both be (frames, A-lines)")
        tp = int(np.sum(predicted & truth))
        fp = int(np.sum(predicted & ~truth))
        fn = int(np.sum(~predicted & truth))
        return cls(tp, fp, predicted.size - tp - fp - fn, fn, float(arc_errors_deg(predicted, truth).sum()), len(truth))

    def __iadd__(self, other: Confusion) -> Self:
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn
        self.arc_error_sum += other.arc_error_sum
        self.n_frames += other.n_frames
        return self

    def metrics(self) -> dict[str, float]:
        """accuracy, dice, sensitivity, specificity and mean per-frame arc error in degrees.

        A ratio whose denominator is zero (no calcium at all, say) is reported as NaN.
        """
        total = self.tp + self.fp + self.tn + self.fn
        return {
            "accuracy": _ratio(self.tp + self.tn, total),
            "dice": _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "sensitivity": _ratio(self.tp, self.tp + self.fn),
            "specificity": _ratio(self.tn, self.tn + self.fp),
            "arc_error_deg": _ratio(self.arc_error_sum, self.n_frames),
            "n_frames": self.n_frames,
        }


def aline_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, Dice, sensitivity and specificity over all (frame, A-line) cells of one map pair."""
    metrics = Confusion.of(predicted, truth).metrics()
    return {key: metrics[key] for key in ("accuracy", "dice", "sensitivity", "specificity")}


def mean_defined(values) -> float:
    """Mean of the defined (non-NaN) values; NaN when none is defined."""
    values = np.asarray(list(values), dtype=float)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def arc_errors_deg(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per frame: |predicted calcium arc - true calcium arc| in degrees (arc = calcified A-lines x 360 / A)."""
    n_alines = truth.shape[-1]
    return np.abs(predicted.sum(axis=-1).astype(float) - truth.sum(axis=-1)) * (360.0 / n_alines)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")
