"""Summary statistics of latency samples and rates; all latencies are reported in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.percentiles import percentile_summary


def latency_summary(seconds: Sequence[float] | np.ndarray) -> dict[str, float | int]:
    """p50, p90, p99, p99.9, max, mean (ms) and the sample count of latencies given in seconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no latency samples to summarise")
    return percentile_summary(ms)


def rate(count: int, seconds: float) -> float:
    """Items per second; raises on a non-positive duration rather than returning inf."""
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {seconds}")
    return count / seconds


def ratio(ours: float, baseline: float) -> float:
    """`ours / baseline` (how many times the baseline); NaN when the baseline is zero."""
    return ours / baseline if baseline else float("nan")


def linear_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of y against x (0.0 for fewer than two points)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return 0.0
    return float(np.polyfit(x, y, 1)[0])
