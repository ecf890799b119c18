"""CUDA backends against the CPU onnxruntime result (run by `pytest -m gpu`, e.g. in bench/gpu_check.py).

Every test here needs a CUDA GPU with CuPy and a CUDA build of torch, and skips otherwise;
the TensorRT tests also need the tensorrt package. Every result is compared with the CPU
reference computed on the same frames, and every call gets frames it has not seen before (a
stale CUDA-graph input or a wrong chunk offset shows up as a mismatch, which repeating one input
or comparing a backend with its own chunking would hide). Tolerances: fp32 paths 1e-4 like the
export; fp16 paths 2e-2 on the probability, with the 0.5 vote identical wherever the reference is
more than 2e-2 from 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.model.weights import LoadedEnsemble
from engine.runtimes import EnsembleRuntime, create_runtime
from engine.xp import cupy_or_none

cp = cupy_or_none()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cp is None or not torch.cuda.is_available(),
                       reason="needs a CUDA GPU with CuPy and a CUDA build of torch (pip install 'ivuscal[gpu]')"),
]


def _has_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


needs_tensorrt = pytest.mark.skipif(not _has_tensorrt(),
                                    reason="TensorRT is not installed (pip install 'ivuscal[gpu]')")


def _frames(n: int, seed: int) -> np.ndarray:
    """n new frames: noise plus a bright band at a seed-dependent angle (votes go both ways)."""
    rng = np.random.default_rng(seed)
    frames = rng.random((n, 128, 360), dtype=np.float32)
    start = int(rng.integers(0, 290))
    frames[:, 30:45, start : start + 70] = 0.95
    return frames


@pytest.fixture(scope="module")
def polar() -> np.ndarray:
    return _frames(12, seed=11)


@pytest.fixture(scope="module")
def cpu(ensemble: LoadedEnsemble) -> EnsembleRuntime:
    return create_runtime("onnxruntime", ensemble, device="cpu")


@pytest.fixture(scope="module")
def cpu_result(cpu: EnsembleRuntime, polar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return cpu.infer(polar)


def _check(runtime: EnsembleRuntime, polar: np.ndarray, cpu_result: tuple[np.ndarray, np.ndarray], tol: float) -> None:
    probability, spread = runtime.infer(cp.asarray(polar))
    assert isinstance(probability, cp.ndarray) and isinstance(spread, cp.ndarray)
    assert probability.dtype == spread.dtype == cp.float32 and probability.shape == (len(polar), 360)
    ref_prob, ref_spread = cpu_result
    assert np.abs(probability.get() - ref_prob).max() <= tol
    assert np.abs(spread.get() - ref_spread).max() <= tol
    clear = np.abs(ref_prob - 0.5) > tol
    assert np.array_equal((probability.get() > 0.5)[clear], (ref_prob > 0.5)[clear])


def test_dlpack_exchange_between_cupy_and_torch_shares_memory() -> None:
    x = cp.arange(12, dtype=cp.float32).reshape(3, 4)
    t = torch.from_dlpack(x)
    assert t.is_cuda and t.data_ptr() == x.data.ptr
    back = cp.from_dlpack(t)
    assert back.data.ptr == x.data.ptr


@pytest.mark.parametrize(("precision", "tol"), [("fp32", 1e-4), ("fp16", 2e-2), ("bf16", 5e-2)])
def test_torch_cuda_matches_cpu_onnxruntime(ensemble: LoadedEnsemble, polar: np.ndarray, cpu_result: tuple,
                                            precision: str, tol: float) -> None:
    runtime = create_runtime("torch", ensemble, device="cuda", precision=precision)
    _check(runtime, polar, cpu_result, tol)
    assert runtime.describe()["cuda_graphs"] is True


def test_cuda_graph_replays_match_the_cpu_on_new_frames(ensemble: LoadedEnsemble, cpu: EnsembleRuntime) -> None:
    """Each replay of a captured graph computes the frames it is given now, not those of the capture."""
    runtime = create_runtime("torch", ensemble, device="cuda", precision="fp32")
    kept = []
    for seed, batch in enumerate([4, 1, 4, 3, 1, 4]):
        frames = _frames(batch, seed=100 + seed)
        result = runtime.infer(cp.asarray(frames))
        kept.append((result, cpu.infer(frames)))
        _check(runtime, frames, kept[-1][1], 1e-4)
    for (probability, _), (ref_prob, _) in kept:  # earlier results were copies, not the graph's static output
        assert np.abs(probability.get() - ref_prob).max() <= 1e-4


def test_cuda_graph_captures_are_bounded(ensemble: LoadedEnsemble, cpu: EnsembleRuntime) -> None:
    from engine.runtimes.torch_backend import GRAPH_MAX_BATCH, MAX_GRAPHS

    runtime = create_runtime("torch", ensemble, device="cuda", precision="fp32")
    for batch in [*range(1, MAX_GRAPHS + 4), GRAPH_MAX_BATCH + 1]:
        frames = _frames(batch, seed=200 + batch)
        _check(runtime, frames, cpu.infer(frames), 1e-4)
        assert len(runtime.describe()["graphs_captured"]) <= MAX_GRAPHS
    captured = runtime.describe()["graphs_captured"]
    assert GRAPH_MAX_BATCH + 1 not in captured and 1 not in captured  # eager beyond the bound; LRU released 1


def test_numpy_frames_are_moved_to_the_device(ensemble: LoadedEnsemble, polar: np.ndarray) -> None:
    runtime = create_runtime("torch", ensemble, device="cuda")
    probability, _ = runtime.infer(polar[:2])
    assert isinstance(probability, cp.ndarray) and runtime.xp is cp


@needs_tensorrt
@pytest.mark.parametrize(("precision", "tol"), [("fp16", 2e-2), ("fp32", 1e-4)])
def test_tensorrt_matches_cpu_onnxruntime(ensemble: LoadedEnsemble, polar: np.ndarray, cpu_result: tuple,
                                          precision: str, tol: float) -> None:
    runtime = create_runtime("tensorrt", ensemble, device="cuda", precision=precision)
    _check(runtime, polar, cpu_result, tol)


@needs_tensorrt
def test_tensorrt_engine_is_built_once_and_batches_beyond_the_profile_match_the_cpu(
    ensemble: LoadedEnsemble, cpu: EnsembleRuntime
) -> None:
    from engine.runtimes.cache import onnx_for
    from engine.runtimes.tensorrt_backend import TensorRTEnsemble

    runtime = TensorRTEnsemble(ensemble, onnx_for(ensemble, "fp32"), precision="fp32", max_batch=4, opt_batch=2)
    built = runtime.engine_path.stat().st_mtime_ns
    again = TensorRTEnsemble(ensemble, onnx_for(ensemble, "fp32"), precision="fp32", max_batch=4, opt_batch=2)
    assert again.engine_path == runtime.engine_path and again.engine_path.stat().st_mtime_ns == built
    for batch, seed in [(10, 300), (3, 301), (9, 302)]:  # chunks of 4: a wrong chunk offset would mismatch
        frames = _frames(batch, seed)
        _check(runtime, frames, cpu.infer(frames), 1e-4)
    assert runtime._stream.ptr != 0  # its own stream, not the legacy default one


def test_auto_picks_tensorrt_else_torch_on_a_gpu(ensemble: LoadedEnsemble) -> None:
    from engine.runtimes import auto_backend

    assert auto_backend() == ("tensorrt" if _has_tensorrt() else "torch")
    assert auto_backend("cpu") == "onnxruntime"
    runtime = create_runtime("auto", ensemble)
    assert runtime.name == auto_backend() and runtime.xp is cp and runtime.describe()["auto"]
