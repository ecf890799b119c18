"""Scenario e: the inference runtimes on the same polar frames, batch 1 and batched.

Each backend comes from `engine.runtimes.create_runtime(backend, model, device)`; the naive
PyTorch-eager ensemble (members one after another, batch 1) is the reference row. Device
backends get their input on the device and are synchronised after every call, so a call's
time is its whole device work. Backends that are not installed or have no device are listed
with the reason instead of a figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.naive import EagerEnsemble
from bench.result import ScenarioResult
from bench.stats import latency_summary, ratio
from engine.errors import BackendUnavailableError
from engine.model.weights import LoadedEnsemble
from engine.runtimes import EnsembleRuntime, create_runtime
from engine.xp import cupy_or_none

NAME = "runtimes"
TITLE = "Inference runtimes on the same frames, batch 1 and batched"
# (backend, device): the CPU ones always; the CUDA ones where a GPU is present.
CPU_BACKENDS: tuple[tuple[str, str | None], ...] = (("onnxruntime", "cpu"), ("torch", "cpu"))
GPU_BACKENDS: tuple[tuple[str, str | None], ...] = (("tensorrt", "cuda"), ("torch", "cuda"))


def polar_frames(n: int, spec, seed: int = 0) -> np.ndarray:
    """(n, depth, A) float32 in [0, 1]: speckle-like values, the same for every backend."""
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 0.12, (n, spec.n_depth, spec.n_alines)).clip(0, 1).astype(np.float32)


def default_backends() -> tuple[tuple[str, str | None], ...]:
    return CPU_BACKENDS + (GPU_BACKENDS if cupy_or_none() is not None else ())


def time_calls(call: Callable[[], object], calls: int, sync: Callable[[], None], warmup: int = 2) -> np.ndarray:
    """Seconds of each of `calls` synchronised calls after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
        sync()
    seconds = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        call()
        sync()
        seconds[i] = time.perf_counter() - t0
    return seconds


def _sync_for(xp) -> Callable[[], None]:
    if xp is np:
        return lambda: None
    return lambda: xp.cuda.Device().synchronize()


def run(
    ensemble: LoadedEnsemble,
    model_description: str,
    backends: tuple[tuple[str, str | None], ...] | None = None,
    batches: tuple[int, ...] = (1, 8, 32),
    frames: int = 64,
    threads: int | None = None,
    levers: bool = False,
) -> ScenarioResult:
    """Per backend and batch size: call latency, per-frame latency and frames/s; ratios to eager.

    `threads` (CPU threads of every CPU backend and of the eager baseline) defaults to each
    backend's own default. `levers`: add batch-1 rows for the CPU speed levers (`_cpu_levers`).
    """
    backends = backends or default_backends()
    data = polar_frames(max(max(batches), 1), ensemble.spec)
    result = ScenarioResult(
        NAME, TITLE, settings={"batches": list(batches), "frames_per_case": frames, "model": model_description}
    )
    eager = EagerEnsemble(ensemble.models, threads)
    result.settings["eager torch threads"] = eager.threads
    eager_s = time_calls(lambda: eager.infer_frame(data[0]), max(frames // 4, 3), lambda: None)
    eager_stats = latency_summary(eager_s)
    eager_fps = 1e3 / eager_stats["mean"]
    result.rows.append(_row("torch eager, members in turn (baseline)", "fp32", 1, eager_stats, eager_fps, eager_fps))
    result.summary["baseline eager batch 1"] = {"call_ms": eager_stats, "frames_per_s": eager_fps}
    result.latencies_s["baseline eager, batch 1"] = eager_s
    for backend, device in backends:
        label = f"{backend} ({device})" if device else backend
        try:
            cpu = device in (None, "cpu") and backend != "tensorrt"
            runtime = create_runtime(backend, model=ensemble, device=device, threads=threads if cpu else None)
        except BackendUnavailableError as error:
            result.notes.append(f"{label}: not run here: {error}")
            continue
        xp, sync = runtime.xp, _sync_for(runtime.xp)
        result.settings[f"runtime {label}"] = runtime_label(runtime)
        result.summary[f"runtime {label}"] = runtime.describe()
        for batch in batches:
            polar = xp.asarray(data[:batch])
            seconds = time_calls(lambda polar=polar, runtime=runtime: runtime.infer(polar), max(frames // batch, 3),
                                 sync)
            stats = latency_summary(seconds)
            fps = batch * 1e3 / stats["mean"]
            result.rows.append(_row(label, runtime.describe().get("precision", ""), batch, stats, fps, eager_fps))
            result.summary[f"{label} batch {batch}"] = {"call_ms": stats, "frames_per_s": fps,
                                                        "ratio_to_eager": ratio(fps, eager_fps)}
            if batch == 1:
                result.latencies_s[f"{label}, batch 1"] = seconds
    if levers:
        _cpu_levers(result, ensemble, data[:1], frames, eager_fps)
    result.notes.append(
        "frames/s = batch / mean call time; 'x eager' = frames/s over the eager baseline's frames/s at batch 1."
    )
    return result


def _cpu_levers(
    result: ScenarioResult, ensemble: LoadedEnsemble, frame: np.ndarray, frames: int, eager_fps: float
) -> None:
    """Batch-1 rows for each CPU speed lever of issue 15, one after another in this run (ratios to eager)."""
    import tempfile

    from engine.model.network import PREVIOUS_CONFIG
    from engine.runtimes.cache import onnx_for
    from engine.runtimes.ort_backend import OnnxRuntimeEnsemble
    from engine.runtimes.synthetic import random_ensemble

    with tempfile.TemporaryDirectory() as folder:
        previous_net = random_ensemble(Path(folder) / "previous.safetensors", len(ensemble.models),
                                       config=PREVIOUS_CONFIG, spec=ensemble.spec)
        cases = [
            ("members in turn (graph before issue 15)", ensemble, "members", 1),
            ("wide grouped graph (default)", ensemble, "wide", 1),
            ("wide grouped graph", ensemble, "wide", 2),
            ("wide, network shipped before issue 15 (8/16/24/32, decoder 24, stem stride 2), random weights",
             previous_net, "wide", 1),
        ]
        for label, source, layout, threads in cases:
            runtime = OnnxRuntimeEnsemble(source, onnx_for(source, "fp32", layout=layout), threads=threads)
            seconds = time_calls(lambda runtime=runtime: runtime.infer(frame), max(frames, 3), lambda: None)
            stats = latency_summary(seconds)
            fps = 1e3 / stats["mean"]
            row_label = f"lever: onnxruntime {label}, {threads} thread{'s' if threads > 1 else ''}"
            result.rows.append(_row(row_label, "fp32", 1, stats, fps, eager_fps))
            result.summary[row_label] = {"call_ms": stats, "frames_per_s": fps, "ratio_to_eager": ratio(fps, eager_fps)}
    result.notes.append(
        "Levers (batch 1, ONNX Runtime fp32, timed one after another in this run): the fused graph with the members "
        "one after another (as shipped before issue 15) against the wide graph (grouped convolutions, "
        "engine/runtimes/fused.py), at 1 and 2 threads, and the network shipped before issue 15 "
        "(engine.model.network.PREVIOUS_CONFIG) with random weights: speed does not depend on the weights."
    )


def runtime_label(runtime: EnsembleRuntime) -> str:
    """A short description of a runtime: backend, device, precision, threads."""
    d = runtime.describe()
    threads = f", {d['threads']} threads" if d.get("threads") else ""
    return f"{d['backend']} on {d.get('device', '?')}, {d.get('precision', '?')}{threads}"


def _row(label: str, precision: str, batch: int, stats: dict, fps: float, eager_fps: float) -> dict:
    return {
        "runtime": label,
        "precision": precision,
        "batch": batch,
        "call p50 ms": stats["p50"],
        "call p99 ms": stats["p99"],
        "per-frame ms (p50)": stats["p50"] / batch,
        "frames/s": fps,
        "x eager": ratio(fps, eager_fps),
    }
