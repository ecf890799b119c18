"""Percentile summaries of samples (latencies in ms, mostly): the one definition every report uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# (name, percentile); numpy's default (linear) interpolation between order statistics.
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


def percentile_summary(
    values: Sequence[float] | np.ndarray,
    percentiles: Sequence[tuple[str, float]] = PERCENTILES,
    suffix: str = "",
) -> dict[str, float | int]:
    """`n`, the named percentiles, `max` and `mean` of `values`, each name + `suffix` (NaN when empty)."""
    data = np.asarray(values, dtype=np.float64).ravel()
    names = [name for name, _ in percentiles] + ["max", "mean"]
    if data.size == 0:
        return {"n": 0, **{name + suffix: float("nan") for name in names}}
    figures = [*np.percentile(data, [q for _, q in percentiles]), data.max(), data.mean()]
    return {"n": int(data.size), **{name + suffix: float(v) for name, v in zip(names, figures, strict=True)}}
