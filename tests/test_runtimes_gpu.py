"""CUDA backends against the CPU onnxruntime result (run by `pytest -m gpu`, e.g. in bench/gpu_check.py).

Every test here needs a CUDA GPU with CuPy and a CUDA build of torch, and skips otherwise;
the TensorRT tests also need the tensorrt package. Tolerances: fp32 paths 1e-4 like the export;
fp16 paths 2e-2 on the probability, with the 0.5 vote identical wherever the reference is more
than 2e-2 from 0.5.
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


needs_tensorrt = pytest.mark.skipif(not _has_tensorrt(), reason="TensorRT is not installed (pip install 'ivuscal[gpu]')")


@pytest.fixture(scope="module")
def polar() -> np.ndarray:
    rng = np.random.default_rng(11)
    frames = rng.random((12, 128, 360), dtype=np.float32)
    frames[:, 30:45, 100:170] = 0.95
    return frames


@pytest.fixture(scope="module")
def cpu_result(ensemble: LoadedEnsemble, polar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return create_runtime("onnxruntime", ensemble, device="cpu").infer(polar)


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


def test_cuda_graph_replays_repeat_and_do_not_depend_on_the_batch(ensemble: LoadedEnsemble, polar: np.ndarray) -> None:
    runtime = create_runtime("torch", ensemble, device="cuda", precision="fp32")
    frames = cp.asarray(polar[:4])
    first = runtime.infer(frames)[0]
    again = runtime.infer(frames)[0]
    assert cp.array_equal(first, again)  # a replay overwrites its static output; results were cloned
    singles = cp.concatenate([runtime.infer(frames[i : i + 1])[0] for i in range(4)])
    assert float(cp.abs(singles - first).max()) <= 1e-5


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
def test_tensorrt_engine_is_built_once_and_batches_run_in_chunks(ensemble: LoadedEnsemble, polar: np.ndarray) -> None:
    from engine.runtimes.cache import onnx_for
    from engine.runtimes.tensorrt_backend import TensorRTEnsemble

    runtime = TensorRTEnsemble(ensemble, onnx_for(ensemble, "fp16"), max_batch=4, opt_batch=2)
    built = runtime.engine_path.stat().st_mtime_ns
    again = TensorRTEnsemble(ensemble, onnx_for(ensemble, "fp16"), max_batch=4, opt_batch=2)
    assert again.engine_path == runtime.engine_path and again.engine_path.stat().st_mtime_ns == built
    frames = cp.asarray(polar[:10])
    whole = runtime.infer(frames)[0]
    parts = cp.concatenate([runtime.infer(frames[i : i + 4])[0] for i in range(0, 10, 4)])
    assert cp.array_equal(whole, parts)


def test_auto_prefers_tensorrt_on_a_gpu_when_installed() -> None:
    from engine.runtimes import auto_backend

    assert auto_backend() == ("tensorrt" if _has_tensorrt() else "onnxruntime")
    assert auto_backend("cpu") == "onnxruntime"
