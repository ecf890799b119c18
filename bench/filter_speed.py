"""Scenario d: the 61 x 13 filter alone, ring buffer against recomputation, across window sizes.

Per pushed frame: `StreamingCalciumFilter.push` (O(A) whatever the window) against
`RecomputingFilter.push` (scipy/cupyx median over the trailing window). Both run on the same
probability rows; their final rows are compared, so the benchmark also checks they agree.
"""

from __future__ import annotations

import time
from types import ModuleType

import numpy as np

from bench.naive import RecomputingFilter
from bench.probabilities import synthetic_probabilities
from bench.result import ScenarioResult, skipped
from bench.stats import latency_summary, ratio
from engine.errors import InputError
from engine.filter import StreamingCalciumFilter
from engine.xp import cupy_or_none

NAME = "filter"
TITLE = "Filter alone: ring buffer vs per-frame recomputation"
# (window_frames, window_alines); 13 x 61 is the default of docs/conventions.md.
WINDOWS: tuple[tuple[int, int], ...] = ((3, 11), (7, 31), (13, 61), (25, 121))


def namespaces(xp_name: str) -> tuple[ModuleType, ModuleType, callable] | None:
    """(xp, ndimage, synchronize) for "numpy" or "cupy"; None when CuPy or a GPU is missing."""
    if xp_name == "numpy":
        import scipy.ndimage

        return np, scipy.ndimage, lambda: None
    cp = cupy_or_none()
    if cp is None:
        return None
    import cupyx.scipy.ndimage

    return cp, cupyx.scipy.ndimage, cp.cuda.Stream.null.synchronize


def time_pushes(push, rows, sync, max_seconds: float) -> tuple[np.ndarray, list]:
    """Per-row seconds of `push(row)` (synchronised), stopping early past `max_seconds`; outputs kept."""
    seconds, outputs = [], []
    start = time.perf_counter()
    for row in rows:
        t0 = time.perf_counter()
        outputs.append(push(row))
        sync()
        seconds.append(time.perf_counter() - t0)
        if time.perf_counter() - start > max_seconds:
            break
    return np.asarray(seconds), outputs


def run(
    frames: int = 300,
    n_alines: int = 360,
    windows: tuple[tuple[int, int], ...] = WINDOWS,
    xp_name: str = "numpy",
    recompute_seconds: float = 4.0,
) -> ScenarioResult:
    """Time both filters per window size; latencies of 13 x 61 (else the last window) are plotted."""
    if frames < 2 * max(wf for wf, _ in windows):
        raise InputError(f"--frames must be at least twice the largest window in frames, got {frames}")
    settings = {"frames": frames, "n_alines": n_alines, "xp": xp_name, "recompute_budget_s": recompute_seconds}
    spaces = namespaces(xp_name)
    if spaces is None:
        return skipped(NAME, TITLE, "xp=cupy needs CuPy and a CUDA GPU; none is usable here", settings)
    xp, ndimage, sync = spaces
    prob = xp.asarray(synthetic_probabilities(frames, n_alines))
    result = ScenarioResult(NAME, TITLE, settings)
    for wf, wa in windows:
        ring = StreamingCalciumFilter(n_alines, wf, wa, xp=xp)
        naive = RecomputingFilter(wf, wa, xp=xp, ndimage=ndimage)
        time_pushes(ring.push, prob[:wf], sync, 1.0)  # warm-up (CuPy kernels compile on first use)
        time_pushes(naive.push, prob[:wf], sync, 1.0)
        ring.reset()
        naive = RecomputingFilter(wf, wa, xp=xp, ndimage=ndimage)
        # Fill both windows untimed, then time the steady state (every push yields a final row).
        steps = [ring.push(row) for row in prob[: wf - 1]]
        finals = [naive.push(row) for row in prob[: wf - 1]]
        ring_s, timed_steps = time_pushes(ring.push, prob[wf - 1 :], sync, float("inf"))
        naive_s, timed_finals = time_pushes(naive.push, prob[wf - 1 :], sync, recompute_seconds)
        steps += timed_steps
        finals += timed_finals
        ring_final = {i: row for step in steps for i, row in step.final}
        checked = [(i, row) for i, row in (f for f in finals if f is not None)]
        agree = all(bool(xp.array_equal(ring_final[i], row)) for i, row in checked)
        ring_stats, naive_stats = latency_summary(ring_s), latency_summary(naive_s)
        label = f"{wa}x{wf}"
        result.rows.append(
            {
                "window (A-lines x frames)": label,
                "ring p50 ms": ring_stats["p50"],
                "ring p99 ms": ring_stats["p99"],
                "ring frames/s": 1e3 / ring_stats["mean"],
                "recompute p50 ms": naive_stats["p50"],
                "recompute p99 ms": naive_stats["p99"],
                "recompute frames/s": 1e3 / naive_stats["mean"],
                "speed-up (p50)": ratio(naive_stats["p50"], ring_stats["p50"]),
                "frames timed (ring/recompute)": f"{ring_stats['n']}/{naive_stats['n']}",
                "outputs agree": agree and bool(checked),
            }
        )
        result.summary[label] = {"ring": ring_stats, "recompute": naive_stats, "agree": agree,
                                 "compared_frames": len(checked)}
        if (wf, wa) == (13, 61) or not result.latencies_s or (13, 61) not in windows:
            result.latencies_s = {f"ring buffer {label}": ring_s, f"recompute {label}": naive_s}
    result.notes.append(
        "Ring buffer: engine.filter.StreamingCalciumFilter.push (final row at t-h and provisional row at t). "
        "Recompute: median_filter over the trailing window padded by wrapping along A-lines, centre row kept; "
        f"it stops after {recompute_seconds:g} s per window. 'outputs agree' compares every final row both produced."
    )
    return result
