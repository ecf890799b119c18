"""The headline of a full run: our figures as ratios to the naive baseline's, in one table."""

from __future__ import annotations

from bench.offline import OVERLAPPED
from bench.result import ScenarioResult
from bench.stats import ratio

NAME = "headline"
TITLE = "Headline: ours vs the naive baseline"


def headline(results: list[ScenarioResult]) -> ScenarioResult | None:
    """Ratios gathered from the offline, runtimes, filter and stream results present (None if none)."""
    by_name = {r.name: r for r in results if not r.skipped}
    rows: list[dict] = []
    offline = by_name.get("offline")
    if offline:
        ours = offline.summary[OVERLAPPED]["frames_per_s"]
        base = offline.summary["naive baseline"]["frames_per_s"]
        rows.append(_row("offline pipeline, frames/s (higher is better)", ours, base, ratio(ours, base)))
    runtimes = by_name.get("runtimes")
    if runtimes:
        eager = runtimes.summary["baseline eager batch 1"]["call_ms"]["p50"]
        for key, value in runtimes.summary.items():
            if key.endswith(" batch 1") and not key.startswith("baseline") and "call_ms" in value:
                ours = value["call_ms"]["p50"]
                rows.append(_row(f"inference latency p50 ms, {key.removesuffix(' batch 1')}, batch 1", ours, eager,
                                 ratio(eager, ours)))
    filt = by_name.get("filter")
    if filt and "61x13" in filt.summary:
        ring, naive = filt.summary["61x13"]["ring"]["p50"], filt.summary["61x13"]["recompute"]["p50"]
        rows.append(_row("61x13 filter per frame, p50 ms", ring, naive, ratio(naive, ring)))
    stream = by_name.get("stream")
    if stream and offline:
        naive_p50 = offline.summary["naive per-frame latency ms"]["p50"]
        for label, value in stream.summary.items():
            if label != "max" and isinstance(value, dict) and "engine_latency_ms" in value:
                ours = value["engine_latency_ms"]["p50"]
                kept_up = value["sustained_frames_per_s"] >= 0.95 * float(label.split()[0])
                figure = (f"live engine latency p50 ms at {label}, {'kept up' if kept_up else 'fell behind'} "
                          "(baseline: its per-frame work)")
                rows.append(_row(figure, ours, naive_p50, ratio(naive_p50, ours)))
    if not rows:
        return None
    result = ScenarioResult(NAME, TITLE, rows=rows)
    result.summary = {row["figure"]: row["ours / baseline advantage"] for row in rows}
    result.notes.append("Advantage = how many times better ours is (frames/s ratio, or latency baseline / ours).")
    return result


def _row(figure: str, ours: float, baseline: float, advantage: float) -> dict:
    return {"figure": figure, "ours": ours, "naive baseline": baseline, "ours / baseline advantage": advantage}
