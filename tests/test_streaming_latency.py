"""Latency figures from result timestamps (engine/streaming/latency.py)."""

from __future__ import annotations

import math

import numpy as np

from engine.streaming.latency import engine_latency_ms, stage_ms, summarize_ms


def result(received: int, started: int, inferred: int, published: int) -> dict:
    return {"kind": "result",
            "t": {"received_ns": received, "started_ns": started, "inferred_ns": inferred, "published_ns": published}}


def test_stages_add_up_to_the_engine_latency_and_other_events_are_ignored() -> None:
    events = [result(0, 1_000_000, 4_000_000, 4_500_000), {"kind": "heartbeat"},
              result(10, 2_000_010, 9_000_010, 9_000_510)]
    total = engine_latency_ms(events)
    np.testing.assert_allclose(total, [4.5, 9.0005])
    parts = (stage_ms(events, "received_ns", "started_ns") + stage_ms(events, "started_ns", "inferred_ns")
             + stage_ms(events, "inferred_ns", "published_ns"))
    np.testing.assert_allclose(parts, total)


def test_summary_percentiles_and_empty_input() -> None:
    stats = summarize_ms(np.arange(1, 101, dtype=float))
    assert stats["n"] == 100 and stats["p50_ms"] == 50.5 and stats["max_ms"] == 100
    assert 99 <= stats["p99_ms"] <= 100
    empty = summarize_ms(np.array([]))
    assert empty["n"] == 0 and math.isnan(empty["p99_ms"])
