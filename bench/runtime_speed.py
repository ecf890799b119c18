"""ONNX Runtime throughput of the fused ensemble on this machine, and where its time goes.

    python -m bench.runtime_speed [--model PATH] [--threads N] [--batches 1,4,16] [--seconds 5] [--out FILE.json]

Without --model it uses the shipped default when present, else an untrained stand-in (timing
does not depend on the weights). For each batch size it reports frames/s and latency; then one
ONNX Runtime profile of batch 1 splits the time by operator and by convolution shape.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import click
import numpy as np

from engine.json_output import write_json
from engine.model.weights import DEFAULT_WEIGHTS, LoadedEnsemble, load_ensemble
from engine.runtimes import create_runtime
from engine.runtimes.ort_backend import OnnxRuntimeEnsemble
from engine.runtimes.synthetic import random_ensemble


def measure(runtime: OnnxRuntimeEnsemble, batch: int, seconds: float) -> dict:
    """Frames/s and per-batch latency of `runtime.infer` on random frames of `batch`."""
    spec = runtime.spec
    polar = np.random.default_rng(0).random((batch, spec.n_depth, spec.n_alines), dtype=np.float32)
    for _ in range(3):
        runtime.infer(polar)
    times = []
    started, cpu_started = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds or len(times) < 5:
        t0 = time.perf_counter()
        runtime.infer(polar)
        times.append(time.perf_counter() - t0)
    cpu_seconds = time.process_time() - cpu_started
    latency = np.array(times)
    return {
        "batch": batch,
        "frames_per_s": batch * len(times) / float(latency.sum()),
        # CPU time of this process per frame (all threads): the work itself, less sensitive than
        # wall time to other processes sharing the cores (idle threads spin, so an upper bound)
        "cpu_ms_per_frame": 1e3 * cpu_seconds / (batch * len(times)),
        "latency_ms_median": 1e3 * float(np.median(latency)),
        "latency_ms_p95": 1e3 * float(np.percentile(latency, 95)),
        "runs": len(times),
    }


def profile(onnx_path: Path, threads: int, batch: int, runs: int = 20) -> dict:
    """ONNX Runtime's own profile: kernel time by operator type and by convolution input shape."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape
        polar = np.random.default_rng(0).random((batch, shape[1], shape[2]), dtype=np.float32)
        for _ in range(runs):
            session.run(None, {"polar": polar})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    by_conv: dict[str, float] = defaultdict(float)
    for event in events:
        args = event.get("args", {})
        if event.get("cat") != "Node" or "op_name" not in args or not event["name"].endswith("_kernel_time"):
            continue
        us = event["dur"] / runs
        by_op[args["op_name"]] += us
        if args["op_name"].endswith("Conv"):
            shapes = [next(iter(s.values())) for s in args.get("input_type_shape", [])[:2]]
            by_conv[f"in {shapes[0]} w {shapes[1]}"] += us
    total = sum(by_op.values())
    top = lambda table: {k: round(v / 1e3, 3) for k, v in sorted(table.items(), key=lambda kv: -kv[1])}  # noqa: E731
    return {"batch": batch, "kernel_ms_per_run": round(total / 1e3, 3), "ms_by_op": top(by_op),
            "ms_by_conv_shape": top(by_conv)}


def _ensemble(model: Path | None, folder: Path) -> LoadedEnsemble:
    if model is not None:
        return load_ensemble(model)
    if DEFAULT_WEIGHTS.is_file():
        return load_ensemble(DEFAULT_WEIGHTS)
    return random_ensemble(folder / "stand-in.safetensors", n_members=5)


@click.command()
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Default: physical cores.")
@click.option("--batches", default="1,4,16", show_default=True)
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Timing per batch size.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the results as JSON.")
def main(model: Path | None, threads: int | None, batches: str, seconds: float, out: Path | None) -> None:
    """Measure and print ONNX Runtime throughput of the 5-model ensemble."""
    with tempfile.TemporaryDirectory() as folder:
        ensemble = _ensemble(model, Path(folder))
        runtime = create_runtime("onnxruntime", ensemble, threads=threads)
        results = {"runtime": runtime.describe(), "load_average": os.getloadavg(), "throughput": [], "profile": None}
        for batch in (int(b) for b in batches.split(",")):
            row = measure(runtime, batch, seconds)
            results["throughput"].append(row)
            click.echo(f"batch {batch:3d}: {row['frames_per_s']:7.1f} frames/s, latency median "
                       f"{row['latency_ms_median']:.1f} ms, p95 {row['latency_ms_p95']:.1f} ms, "
                       f"{row['cpu_ms_per_frame']:.1f} CPU-ms/frame ({row['runs']} runs)")
        results["profile"] = profile(runtime.onnx_path, runtime.threads, batch=1)
    click.echo(f"profile, batch 1: {results['profile']['kernel_ms_per_run']} ms of kernels per frame")
    for name, ms in list(results["profile"]["ms_by_op"].items())[:6]:
        click.echo(f"  {name:24s} {ms:7.3f} ms")
    for name, ms in list(results["profile"]["ms_by_conv_shape"].items())[:8]:
        click.echo(f"  conv {name:60s} {ms:7.3f} ms")
    if out is not None:
        write_json(out, results)


if __name__ == "__main__":
    main()
