"""Soak: an hour of frames (108,000 at 30 fps) through the engine at the maximum rate, with the
process's resident memory sampled all along; memory must stay flat (slope over the second half).

Frames of a recorded pullback are decoded once and replayed in a loop through
`CalciumPipeline` (polar -> ensemble -> filter -> quantify) in batches, as consecutive pullbacks
of `pullback_frames` frames (`begin`/`end` each time), as the live engine sees them. The report
gives RSS against frames processed and its slope after a warm-up share of the run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.monitor import ResourceMonitor
from bench.result import ScenarioResult
from bench.stats import linear_slope, rate
from engine.dicom import open_pullback
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.progress import progress
from engine.runtimes import EnsembleRuntime

NAME = "soak"
TITLE = "Soak: memory over a long run at the maximum rate"
# The slope is fitted over the second half: the first half holds the one-off growth of the first
# pullbacks (allocator pools, per-pullback maps), which is not a leak; a leak shows in both halves.
WARMUP_SHARE = 0.5


def run(
    path: Path,
    runtime: EnsembleRuntime,
    model_description: str,
    frames: int = 108_000,
    pullback_frames: int = 3000,
    batch: int = 16,
    source_frames: int = 256,
    interval_s: float = 0.5,
    quiet: bool = True,
) -> ScenarioResult:
    """Push `frames` frames through the pipeline; RSS sampled every `interval_s` seconds."""
    with open_pullback(path) as pull:
        calibration = pull.info.calibration
        image_shape = (pull.info.rows, pull.info.cols)
        source = pull.read_frames(0, min(source_frames, pull.info.n_frames))
    pipeline = CalciumPipeline(runtime, PipelineSettings())
    done = 0
    pullbacks = 0
    with (
        ResourceMonitor(interval_s=interval_s, counter=lambda: done) as monitor,
        progress("soak", frames, quiet) as bar,
    ):
        t0 = time.perf_counter()
        while done < frames:
            n_this = min(pullback_frames, frames - done)
            pipeline.begin(calibration, image_shape)
            for first in range(0, n_this, batch):
                count = min(batch, n_this - first)
                picks = (np.arange(first, first + count) + done) % len(source)
                pipeline.process(source[picks], first)
                done += count
                bar.advance(count)
            pipeline.end()
            pullbacks += 1
        wall = time.perf_counter() - t0
    usage = monitor.usage
    frames_axis = np.asarray(usage.extra, dtype=np.float64)
    steady = frames_axis >= WARMUP_SHARE * frames
    slope = linear_slope(frames_axis[steady], usage.rss_mib[steady]) * 1000  # MiB per 1000 frames
    first_rss = float(usage.rss_mib[steady][0]) if steady.any() else float(usage.rss_mib[0])
    last_rss = float(usage.rss_mib[-1])
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={
            "frames": frames,
            "hour_equivalent_at_30fps": round(frames / 108_000, 3),
            "pullback_frames": pullback_frames,
            "batch": batch,
            "source_frames_looped": len(source),
            "backend": runtime.name,
            "model": model_description,
        },
        memory={"RSS": (frames_axis, usage.rss_mib)},
        memory_axis="frames processed",
    )
    summary = {
        "frames": done,
        "pullbacks": pullbacks,
        "wall_s": wall,
        "frames_per_s": rate(done, wall),
        "cpu_percent": usage.cpu_percent,
        "rss_start_mib": float(usage.rss_mib[0]),
        "rss_half_way_mib": first_rss,
        "rss_growth_second_half_mib": last_rss - first_rss,
        "rss_end_mib": last_rss,
        "peak_rss_mib": usage.peak_rss_mib,
        "rss_slope_mib_per_1000_frames": slope,
        "rss_slope_mib_per_hour_at_30fps": slope * 108,
        "samples": int(usage.rss_mib.size),
    }
    result.summary = summary
    result.rows.append(
        {
            "frames": done,
            "pullbacks": pullbacks,
            "frames/s": summary["frames_per_s"],
            "CPU %": summary["cpu_percent"],
            "RSS at half-way MiB": first_rss,
            "RSS end MiB": last_rss,
            "peak RSS MiB": summary["peak_rss_mib"],
            "growth in 2nd half MiB": last_rss - first_rss,
            "slope MiB/1000 frames": slope,
            "slope MiB/hour at 30 fps": summary["rss_slope_mib_per_hour_at_30fps"],
        }
    )
    result.notes.append(
        f"Slope: least squares of RSS against frames over the last {1 - WARMUP_SHARE:.0%} of the run "
        "(the first pullbacks' one-off growth is left out). "
        f"{len(source)} decoded frames are looped, as consecutive pullbacks of {pullback_frames} frames."
    )
    return result
