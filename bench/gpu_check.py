"""One-shot GPU check for a single CUDA machine (designed for one H200, under 4 minutes).

    python -m bench.gpu_check --out gpu-check.json [--model PATH] [--no-tests] [--budget-s 210]

Runs on a bare GPU machine with Python, a CUDA build of torch, CuPy and ONNX Runtime (CPU): it
imports neither TensorRT (used only when installed), nor pyzmq, nor pydicom, directly or through
the engine modules it loads (tests/test_gpu_check.py runs it under an import blocker). Each
CUDA backend is created, and so each TensorRT engine built, once.

Writes JSON (rewritten after every section, so a timeout still leaves what was measured):
- `environment`: torch, CUDA device, CuPy, TensorRT, ONNX Runtime versions, what `auto` picks;
- `tests`: `pytest -m gpu` over the GPU test files (GPU_TEST_FILES) exit code and counts;
- `parity`: each CUDA backend (torch fp32/fp16/bf16, TensorRT fp16/fp32 when installed) against
  the CPU onnxruntime result on the same frames: max |diff| of probability and spread, and the
  0.5 votes that differ (all, and outside the fp16 band of 2e-2 around 0.5);
- `filter`: the CuPy streaming filter against the NumPy one on the same probability map;
- `pipeline`: the composed pipeline (sampler, runtime, filter, arcs) on the device against the
  CPU pipeline, on the same uint8 frames;
- `speed`: batch-1 latency and frames/s at larger batches for each CUDA backend, and the CPU
  onnxruntime figures of the same machine.
Each section records its error instead of stopping the run; sections that would start after
`--budget-s` seconds are recorded as skipped, so the whole check stays within its time.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import numpy as np

from engine.json_output import write_json
from engine.model.weights import DEFAULT_WEIGHTS, LoadedEnsemble, load_ensemble
from engine.runtimes import EnsembleRuntime, auto_choice, create_runtime
from engine.runtimes.synthetic import random_ensemble
from engine.xp import cupy_or_none

CUDA_BACKENDS = [("torch", "fp32"), ("torch", "fp16"), ("torch", "bf16"), ("tensorrt", "fp16"), ("tensorrt", "fp32")]
BAND = 2e-2
# The files with gpu-marked tests; named, not collected from tests/, so that pytest imports no
# test module that needs pyzmq or pydicom (absent on a bare GPU machine).
GPU_TEST_FILES = ["tests/test_runtimes_gpu.py", "tests/test_pipeline.py", "tests/test_filter.py",
                  "tests/test_geometry.py", "tests/test_quantify_arcs.py"]


def environment() -> dict:
    import onnxruntime as ort
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
                            "onnxruntime": ort.__version__, "ort_providers": ort.get_available_providers()}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    cp = cupy_or_none()
    info["cupy"] = getattr(cp, "__version__", None)
    try:
        import tensorrt  # optional: reported when installed

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    info["auto_backend"], info["auto_because"] = auto_choice()
    return info


def run_gpu_tests(timeout_s: int = 150) -> dict:
    """`pytest -m gpu` on GPU_TEST_FILES in a subprocess; counts from its JUnit XML."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                               f"--junitxml={junit}", *GPU_TEST_FILES],
                              capture_output=True, text=True, timeout=timeout_s, cwd=root)
        result = {"exit_code": proc.returncode, "seconds": round(time.perf_counter() - started, 1),
                  "tail": proc.stdout[-3000:]}
        if junit.is_file():
            suite = ET.parse(junit).getroot().find("testsuite")
            if suite is not None:
                result.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    return result


def frames(n: int, seed: int = 3) -> np.ndarray:
    """Random polar frames with a bright band, so the ensemble votes both ways."""
    rng = np.random.default_rng(seed)
    polar = rng.random((n, 128, 360), dtype=np.float32)
    polar[:, 30:45, 90:170] = 0.95
    return polar


def compare(candidate: tuple[Any, Any], reference: tuple[np.ndarray, np.ndarray]) -> dict:
    """Max |diff| of probability and spread, and differing 0.5 votes (all / outside the band)."""
    prob, spread = (np.asarray(a.get() if hasattr(a, "get") else a) for a in candidate)
    ref_prob, ref_spread = reference
    differ = (prob > 0.5) != (ref_prob > 0.5)
    return {"max_abs_prob": float(np.abs(prob - ref_prob).max()),
            "max_abs_spread": float(np.abs(spread - ref_spread).max()),
            "votes_differing": int(differ.sum()),
            "votes_differing_outside_band": int((differ & (np.abs(ref_prob - 0.5) > BAND)).sum()),
            "cells": int(prob.size)}


def cuda_runtimes(ensemble: LoadedEnsemble) -> tuple[dict[str, EnsembleRuntime], dict]:
    """Every CUDA backend that can be created, and for each what it is or why it failed."""
    runtimes, report = {}, {}
    for backend, precision in CUDA_BACKENDS:
        key = f"{backend}-{precision}"
        started = time.perf_counter()
        try:
            runtimes[key] = create_runtime(backend, ensemble, device="cuda", precision=precision)
            report[key] = {"created_s": round(time.perf_counter() - started, 1), **runtimes[key].describe()}
        except Exception as error:  # recorded, the other backends still run
            report[key] = {"error": f"{type(error).__name__}: {error}"}
    return runtimes, report


def filter_parity(cp: Any) -> dict:
    """CuPy streaming filter vs NumPy on a smooth random probability map (final and provisional rows)."""
    from scipy.ndimage import gaussian_filter

    from engine.filter import StreamingCalciumFilter

    rng = np.random.default_rng(5)
    prob = gaussian_filter(rng.random((400, 360)), sigma=(4, 12), mode="wrap")
    prob = ((prob - prob.mean()) / prob.std() * 0.2 + 0.45).clip(0, 1).astype(np.float32)
    outputs = {}
    for name, xp in (("numpy", np), ("cupy", cp)):
        filt = StreamingCalciumFilter(360, 13, 61, xp=xp)
        final, provisional = {}, {}
        started = time.perf_counter()
        for row in xp.asarray(prob):
            step = filt.push(row)
            final.update(step.final)
            provisional[step.provisional[0]] = step.provisional[1]
        final.update(filt.flush())
        seconds = time.perf_counter() - started
        outputs[name] = (np.array([_host(final[i]) for i in range(len(prob))]),
                         np.array([_host(provisional[i]) for i in range(len(prob))]), seconds)
    (f_np, p_np, s_np), (f_cp, p_cp, s_cp) = outputs["numpy"], outputs["cupy"]
    return {"frames": len(prob), "final_identical": bool(np.array_equal(f_np, f_cp)),
            "provisional_identical": bool(np.array_equal(p_np, p_cp)), "calcified_fraction": float(f_np.mean()),
            "numpy_ms_per_frame": 1e3 * s_np / len(prob), "cupy_ms_per_frame": 1e3 * s_cp / len(prob)}


def pipeline_parity(cpu: EnsembleRuntime, gpu: EnsembleRuntime, n_frames: int = 48) -> dict:
    """The composed pipeline on the device vs on the CPU, same uint8 Cartesian frames."""
    from engine.pipeline import CalciumPipeline

    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, size=(n_frames, 500, 500), dtype=np.uint8)
    rr, cc = np.mgrid[:500, :500]
    images[:, (np.hypot(rr - 250, cc - 250) > 90) & (np.hypot(rr - 250, cc - 250) < 110) & (cc > 250)] = 255
    calibration = SimpleNamespace(pixel_spacing_mm=(0.02, 0.02), center_rc=(250.0, 250.0), frame_time_s=1 / 30,
                                  pullback_rate_mm_s=0.5)
    result = {}
    maps = {}
    for name, runtime in (("cpu", cpu), ("gpu", gpu)):
        pipeline = CalciumPipeline(runtime)
        pipeline.begin(calibration, (500, 500))
        finals = []
        started = time.perf_counter()
        for start in range(0, n_frames, 8):
            batch = images[start : start + 8] if name == "cpu" else gpu.xp.asarray(images[start : start + 8])
            finals += [f.calcium for out in pipeline.process(batch, start) for f in out.final]
        finals += [f.calcium for f in pipeline.end().final]
        result[f"{name}_ms_per_frame"] = 1e3 * (time.perf_counter() - started) / n_frames
        maps[name] = np.array([_host(row) for row in finals])
    result.update(frames=n_frames, runtime_gpu=gpu.describe()["backend"] + "-" + gpu.describe()["precision"],
                  final_cells_identical=float((maps["cpu"] == maps["gpu"]).mean()),
                  calcified_fraction=float(maps["cpu"].mean()))
    return result


def speed(runtime: EnsembleRuntime, batches: tuple[int, ...], seconds: float = 1.5) -> dict:
    """Batch-1 latency (median/p95, synchronised) and frames/s per batch size."""
    xp = runtime.xp
    sync = (lambda: xp.cuda.get_current_stream().synchronize()) if xp is not np else (lambda: None)
    out = {}
    for batch in batches:
        polar = xp.asarray(frames(batch, seed=batch))
        for _ in range(3):
            runtime.infer(polar)
        sync()
        times = []
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or len(times) < 5:
            t0 = time.perf_counter()
            runtime.infer(polar)
            sync()
            times.append(time.perf_counter() - t0)
        t = np.array(times)
        out[str(batch)] = {"frames_per_s": round(batch * len(t) / float(t.sum()), 1),
                           "latency_ms_median": round(1e3 * float(np.median(t)), 3),
                           "latency_ms_p95": round(1e3 * float(np.percentile(t, 95)), 3)}
    return out


def _host(row: Any) -> np.ndarray:
    return row.get() if hasattr(row, "get") else np.asarray(row)


class Budget:
    """Seconds left of the check's time limit."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def _section(report: dict, name: str, out: Path, work: Callable[[], Any], budget: Budget | None = None) -> Any:
    started = time.perf_counter()
    if budget is not None and budget.left() <= 0:
        report[name] = {"skipped": "over the time budget (--budget-s)"}
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report[name]
    try:
        report[name] = work()
    except Exception as error:  # a failed section is a result, the rest still runs
        report[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}
    click.echo(f"[{time.perf_counter() - started:6.1f} s] {name}: {json.dumps(report[name])[:300]}")
    write_json(out, report)
    return report[name]


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("gpu-check.json"),
              show_default=True)
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--no-tests", is_flag=True, help="Skip the pytest -m gpu run.")
@click.option("--budget-s", type=click.FloatRange(min=10), default=210.0, show_default=True,
              help="Start no section after this many seconds (the check must finish within 4 minutes).")
def main(out: Path, model: Path | None, no_tests: bool, budget_s: float) -> None:
    """Parity, device-residency and speed of the CUDA paths; see the module docstring."""
    budget = Budget(budget_s)
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _section(report, "environment", out, environment)
    cp = cupy_or_none()
    if cp is None:
        report["error"] = "no CUDA GPU with CuPy: nothing to check (pip install 'ivuscal[gpu]')"
        write_json(out, report)
        raise SystemExit(report["error"])
    with tempfile.TemporaryDirectory() as folder:
        if model is None and not DEFAULT_WEIGHTS.is_file():
            ensemble = random_ensemble(Path(folder) / "stand-in.safetensors")
        else:
            ensemble = load_ensemble(model)
        report["model"] = {"model_id": ensemble.model_id, "members": len(ensemble.models)}
        if not no_tests:
            _section(report, "tests", out, lambda: run_gpu_tests(timeout_s=int(max(10, min(150, budget.left() - 60)))),
                     budget)
        polar = frames(64)
        cpu = create_runtime("onnxruntime", ensemble, device="cpu")
        reference = cpu.infer(polar)
        runtimes, created = cuda_runtimes(ensemble)
        _section(report, "backends", out, lambda: created)
        _section(report, "parity", out,
                 lambda: {k: compare(rt.infer(cp.asarray(polar)), reference) for k, rt in runtimes.items()}, budget)
        _section(report, "filter", out, lambda: filter_parity(cp), budget)
        if runtimes:
            exact = runtimes.get("torch-fp32") or next(iter(runtimes.values()))
            _section(report, "pipeline", out, lambda: pipeline_parity(cpu, exact), budget)
        batches = (1, 16, 64, 256)
        _section(report, "speed", out, lambda: {"onnxruntime-cpu": speed(cpu, (1, 16)),
                                                **{k: speed(rt, batches) for k, rt in runtimes.items()}}, budget)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(out, report)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
