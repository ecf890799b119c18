"""Scenarios b and c: the offline pipeline on a recorded pullback, stage by stage and composed,
side by side with the naive baseline on the same file.

Ours: chunks from `open_pullback(...).iter_chunks` -> `PolarSampler` (batched, preallocated)
-> `runtime.infer` (batched) -> `StreamingCalciumFilter.push` -> `LesionTracker` + `frame_arcs`,
each stage timed; then the same file through `CalciumPipeline` as `ivuscal analyze` composes it.
Baseline: the same decode and polar sampling, then per frame `EagerEnsemble.infer_frame`
(five models one after another, batch 1) and `RecomputingFilter` (scipy median over the
trailing window), then the same quantification.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from bench.monitor import ResourceMonitor, ResourceUsage
from bench.naive import EagerEnsemble, RecomputingFilter
from bench.result import ScenarioResult
from bench.runtime_compare import runtime_label
from bench.stats import latency_summary, rate, ratio
from bench.timing import StageClock
from engine.dicom import open_pullback
from engine.filter import StreamingCalciumFilter
from engine.geometry import PolarSampler
from engine.model.weights import LoadedEnsemble
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.progress import progress
from engine.quantify import LesionTracker, frame_arcs
from engine.runtimes import EnsembleRuntime
from engine.xp import to_numpy

STAGES = ("decode", "polar", "inference", "filter", "quantify")


@dataclass
class PassResult:
    """One pass over a pullback: stage seconds, frames, wall time, resources, per-frame latencies."""

    label: str
    frames: int
    wall_s: float
    clock: StageClock
    usage: ResourceUsage
    calcified_frames: int
    frame_latency_s: np.ndarray | None = None

    @property
    def frames_per_s(self) -> float:
        return rate(self.frames, self.wall_s)

    def stage_rates(self) -> dict[str, float]:
        return {s: rate(self.frames, sec) for s, sec in self.clock.seconds.items() if sec > 0}


def _sampler(pull, spec, xp: ModuleType = np) -> PolarSampler:
    cal = pull.info.calibration
    return PolarSampler((pull.info.rows, pull.info.cols), cal.center_rc, cal.pixel_spacing_mm, spec, xp)


def device_sync(xp: ModuleType) -> Callable[[], None] | None:
    """A callable that waits for queued device work (nothing to wait for with NumPy)."""
    return None if xp is np else xp.cuda.Device().synchronize


def _spacing_mm(pull) -> float:
    cal = pull.info.calibration
    return cal.frame_time_s * cal.pullback_rate_mm_s


def staged_pass(path: Path, runtime: EnsembleRuntime, frames: int, chunk_frames: int, settings: PipelineSettings, quiet: bool) -> PassResult:
    """Our stages one after another per chunk, each charged to its own clock.

    Polar sampling and the filter run on the runtime's array namespace (on the GPU with a device
    backend, the upload charged to polar), as `CalciumPipeline` arranges them.
    """
    xp = runtime.xp
    clock = StageClock(STAGES, sync=device_sync(xp))
    with open_pullback(path) as pull, ResourceMonitor() as monitor, progress("ours, staged", frames, quiet) as bar:
        sampler = _sampler(pull, runtime.spec, xp)
        filt = StreamingCalciumFilter(runtime.spec.n_alines, settings.window_frames, settings.window_alines, xp=xp)
        tracker = LesionTracker(_spacing_mm(pull), settings.quantify, settings.findings)
        polar = xp.empty((chunk_frames, *sampler.output_shape), np.float32)
        chunks = pull.iter_chunks(chunk_frames, stop=frames)
        t0 = time.perf_counter()
        for _, cartesian in clock.timed("decode", chunks):
            with clock("polar"):
                batch = sampler.sample_into(xp.asarray(cartesian), polar[: len(cartesian)])
            with clock("inference"):
                mean, _ = runtime.infer(batch)
            with clock("filter"):
                final = [f for row in mean for f in filt.push(row).final]
            with clock("quantify"):
                _quantify(final, tracker)
            bar.advance(len(cartesian))
        with clock("filter"):
            final = filt.flush()
        with clock("quantify"):
            _quantify(final, tracker)
            tracker.finish()
        wall = time.perf_counter() - t0
    return PassResult("ours (staged)", frames, wall, clock, monitor.usage, tracker.calcified_frames)


def composed_pass(path: Path, runtime: EnsembleRuntime, frames: int, chunk_frames: int, settings: PipelineSettings, quiet: bool) -> PassResult:
    """The product path: decode chunks into `CalciumPipeline.process`, then `end()`."""
    pipeline = CalciumPipeline(runtime, settings)
    clock = StageClock(("decode", "pipeline"), sync=device_sync(pipeline.xp))
    with open_pullback(path) as pull, ResourceMonitor() as monitor, progress("ours, CalciumPipeline", frames, quiet) as bar:
        pipeline.begin(pull.info.calibration, (pull.info.rows, pull.info.cols))
        chunks = pull.iter_chunks(chunk_frames, stop=frames)
        t0 = time.perf_counter()
        for start, cartesian in clock.timed("decode", chunks):
            with clock("pipeline"):
                pipeline.process(cartesian, start)
            bar.advance(len(cartesian))
        with clock("pipeline"):
            summary = pipeline.end().summary
        wall = time.perf_counter() - t0
    return PassResult("ours (CalciumPipeline)", frames, wall, clock, monitor.usage, summary.calcified_frames)


def baseline_pass(
    path: Path, ensemble: LoadedEnsemble, frames: int, chunk_frames: int, settings: PipelineSettings, quiet: bool, threads: int | None = None
) -> PassResult:
    """The naive pipeline: per frame polar, eager members one by one, recomputed filter, quantify."""
    clock = StageClock(STAGES)
    eager = EagerEnsemble(ensemble.models, threads)
    naive = RecomputingFilter(settings.window_frames, settings.window_alines)
    latencies: list[float] = []
    with open_pullback(path) as pull, ResourceMonitor() as monitor, progress("naive baseline", frames, quiet) as bar:
        sampler = _sampler(pull, ensemble.spec)
        tracker = LesionTracker(_spacing_mm(pull), settings.quantify, settings.findings)
        chunks = pull.iter_chunks(chunk_frames, stop=frames)
        t0 = time.perf_counter()
        for _, chunk in clock.timed("decode", chunks):
            for cartesian in chunk:
                f0 = time.perf_counter()
                with clock("polar"):
                    polar = sampler(cartesian)
                with clock("inference"):
                    prob = eager.infer_frame(polar)
                with clock("filter"):
                    out = naive.push(prob)
                with clock("quantify"):
                    _quantify([out] if out is not None else [], tracker)
                latencies.append(time.perf_counter() - f0)
                bar.advance()
        wall = time.perf_counter() - t0
    return PassResult("naive baseline", frames, wall, clock, monitor.usage, tracker.calcified_frames, np.asarray(latencies))


def naive_threads() -> int:
    """PyTorch's intra-op threads, which the eager baseline ran with."""
    import torch

    return torch.get_num_threads()


def warm_up(runtime: EnsembleRuntime, batch: int, calls: int = 2) -> None:
    """A few untimed inferences, so that thread pools, arenas and kernels are ready before timing."""
    polar = np.zeros((batch, runtime.spec.n_depth, runtime.spec.n_alines), np.float32)
    for _ in range(calls):
        runtime.infer(polar)


def _quantify(final: list, tracker: LesionTracker) -> None:
    for index, row in final:
        calcium = to_numpy(row)
        tracker.update(index, calcium)
        frame_arcs(calcium)


def run(
    path: Path,
    runtime: EnsembleRuntime,
    ensemble: LoadedEnsemble,
    model_description: str,
    frames: int | None = None,
    baseline_frames: int = 300,
    chunk_frames: int = 32,
    settings: PipelineSettings | None = None,
    quiet: bool = True,
) -> ScenarioResult:
    """Both of our passes over `frames` frames and the baseline over its first `baseline_frames`."""
    settings = settings or PipelineSettings()
    with open_pullback(path) as pull:
        available = pull.info.n_frames
        image = f"{pull.info.rows}x{pull.info.cols}"
    frames = min(frames or available, available)
    baseline_frames = min(baseline_frames, frames)
    warm_up(runtime, chunk_frames)
    staged = staged_pass(path, runtime, frames, chunk_frames, settings, quiet)
    composed = composed_pass(path, runtime, frames, chunk_frames, settings, quiet)
    cpu_threads = runtime.describe().get("threads") if runtime.xp is np else None
    naive = baseline_pass(path, ensemble, baseline_frames, chunk_frames, settings, quiet, cpu_threads)
    result = ScenarioResult(
        "offline",
        "Offline pipeline vs naive baseline",
        settings={
            "pullback_frames": frames,
            "baseline_frames": baseline_frames,
            "image": image,
            "chunk_frames": chunk_frames,
            "backend": runtime.name,
            "runtime": runtime_label(runtime),
            "model": model_description,
            "window": f"{settings.window_alines}x{settings.window_frames}",
            "baseline_torch_threads": naive_threads(),
        },
    )
    for p in (staged, composed, naive):
        row = {"pass": p.label, "frames": p.frames, "frames/s": p.frames_per_s}
        for stage in STAGES:
            sec = p.clock.seconds.get(stage)
            row[f"{stage} frames/s"] = rate(p.frames, sec) if sec else "-"
        row["CPU %"] = p.usage.cpu_percent
        row["peak RSS MiB"] = p.usage.peak_rss_mib
        result.rows.append(row)
        result.summary[p.label] = {
            "frames": p.frames,
            "wall_s": p.wall_s,
            "frames_per_s": p.frames_per_s,
            "stage_seconds": dict(p.clock.seconds),
            "stage_frames_per_s": p.stage_rates(),
            "resources": p.usage.to_dict(),
        }
    result.summary["runtime"] = runtime.describe()
    base_rates = naive.stage_rates()
    result.summary["ratios_to_baseline"] = {
        "frames_per_s (CalciumPipeline)": ratio(composed.frames_per_s, naive.frames_per_s),
        "frames_per_s (staged)": ratio(staged.frames_per_s, naive.frames_per_s),
        **{f"{s} frames/s": ratio(r, base_rates[s]) for s, r in staged.stage_rates().items() if s in base_rates},
    }
    result.rows.append(
        {"pass": "ratio ours / baseline", "frames/s": result.summary["ratios_to_baseline"]["frames_per_s (CalciumPipeline)"]}
        | {f"{s} frames/s": result.summary["ratios_to_baseline"].get(f"{s} frames/s", "-") for s in STAGES}
    )
    result.summary["naive per-frame latency ms"] = latency_summary(naive.frame_latency_s)
    result.latencies_s = {"naive baseline, per frame (polar+5 eager models+recomputed filter+quantify)": naive.frame_latency_s}
    result.notes += [
        "Stage frames/s = frames / seconds spent in that stage; the staged pass and the baseline share decode and polar code.",
        f"The baseline runs the first {baseline_frames} frames only (its per-frame cost does not change along the pullback).",
        (
            f"Calcified frames found: ours {staged.calcified_frames} (CalciumPipeline {composed.calcified_frames}) "
            f"over {frames}, baseline {naive.calcified_frames} over {baseline_frames}."
        ),
    ]
    return result
