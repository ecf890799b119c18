"""Engine-added latency from the timestamps in published results (docs/streaming.md).

The engine stamps each result with `received_ns` (the message left ZeroMQ in the receiver
thread), `started_ns` (the worker took its batch off the queue), `inferred_ns` (the pipeline
returned) and `published_ns` (just before the result was sent), all from the engine's monotonic
clock. published - received is the latency the engine adds; started - received is queueing,
inferred - started is compute (polar, ensemble, filter, arcs), published - inferred is encoding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.percentiles import PERCENTILES, percentile_summary


def engine_latency_ms(events: list[dict[str, Any]]) -> np.ndarray:
    """Received-to-published milliseconds of every `result` event, in order."""
    return stage_ms(events, "received_ns", "published_ns")


def stage_ms(events: list[dict[str, Any]], since: str, until: str) -> np.ndarray:
    """Milliseconds between two stamps of every `result` (e.g. 'started_ns' -> 'inferred_ns': compute)."""
    stamps = [e["t"] for e in events if e.get("kind") == "result"]
    return np.asarray([(t[until] - t[since]) / 1e6 for t in stamps], dtype=np.float64)


def summarize_ms(values: np.ndarray) -> dict[str, float | int]:
    """Count, p50, p90, p99, max and mean of millisecond values, keys ending in `_ms` (NaN when none)."""
    return percentile_summary(values, PERCENTILES[:3], suffix="_ms")
