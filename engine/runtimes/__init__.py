"""Inference runtimes: the fused ensemble on ONNX Runtime, PyTorch or TensorRT behind one interface.

    runtime = create_runtime("auto")            # TensorRT on a GPU, else torch on CUDA, else ONNX Runtime
    probability, spread = runtime.infer(polar)  # (B, D, A) float32 -> two (B, A) float32 on runtime.xp

Backends and the packages they need are imported only when chosen.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import BackendUnavailableError, InputError
from engine.runtimes.base import EnsembleRuntime
from engine.xp import cupy_or_none

if TYPE_CHECKING:  # torch-heavy; imported when a runtime is created (keeps CLI --help fast)
    from engine.model.weights import LoadedEnsemble

BACKENDS = ("auto", "onnxruntime", "torch", "tensorrt")

__all__ = ["BACKENDS", "EnsembleRuntime", "auto_backend", "auto_choice", "create_runtime"]

log = logging.getLogger(__name__)


def auto_choice(device: str | None = None) -> tuple[str, str]:
    """The backend `auto` runs on this machine and why: (backend, reason).

    TensorRT when a CUDA GPU, CuPy and TensorRT are all present; else torch on CUDA when torch
    sees a GPU and CuPy is installed; else ONNX Runtime on the CPU. `device="cpu"` means the CPU.
    """
    if device == "cpu":
        return "onnxruntime", "the CPU was asked for"
    if cupy_or_none() is None:
        return "onnxruntime", "no CUDA GPU with CuPy (pip install 'ivuscal[gpu]' on a GPU machine)"
    try:
        import tensorrt  # noqa: F401 - optional GPU dependency: importable or not
    except ImportError:
        try:
            import torch
        except ImportError:
            return "onnxruntime", "CuPy sees a GPU but neither TensorRT nor torch is installed"
        if torch.cuda.is_available():
            return "torch", "CUDA GPU and CuPy present, TensorRT not installed"
        return "onnxruntime", f"CuPy sees a GPU but this torch {torch.__version__} has no CUDA"
    return "tensorrt", "CUDA GPU, CuPy and TensorRT present"


def auto_backend(device: str | None = None) -> str:
    """The backend `auto` runs on this machine (see `auto_choice`)."""
    return auto_choice(device)[0]


def create_runtime(
    backend: str = "auto",
    model: str | Path | LoadedEnsemble | None = None,
    device: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
) -> EnsembleRuntime:
    """A ready runtime for `model` (weights path, a loaded ensemble, or None for the shipped default).

    `device`: 'cpu', 'cuda' or 'cuda:N' (backend default when None). `threads`: CPU threads
    (physical cores when None). `precision`: 'fp32', or 'fp16'/'bf16' on CUDA (backend default
    when None). Raises InputError for an unknown backend or option, BackendUnavailableError when
    the backend's packages or device are missing. With `auto` the runtime's `describe()` says
    which backend was chosen and why (`auto`), and the choice is logged.
    """
    from engine.model.weights import LoadedEnsemble, load_ensemble

    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    chosen_because = None
    if backend == "auto":
        backend, chosen_because = auto_choice(device)
        if backend != "onnxruntime" and device is None:
            device = "cuda"
        log.info("backend auto: %s (%s)", backend, chosen_because)
    if backend == "tensorrt":
        from engine.runtimes.tensorrt_backend import import_tensorrt, require_cupy

        import_tensorrt()
        require_cupy(backend)
    ensemble = model if isinstance(model, LoadedEnsemble) else load_ensemble(model)
    if backend == "onnxruntime":
        runtime = _onnxruntime(ensemble, device, threads, precision)
    elif backend == "torch":
        try:
            from engine.runtimes.torch_backend import TorchEnsemble
        except ModuleNotFoundError as error:
            raise BackendUnavailableError(
                f"backend 'torch' needs PyTorch ({error.name} is missing): pip install 'ivuscal[train]'"
            ) from error
        runtime = TorchEnsemble(ensemble, device=device, threads=threads, precision=precision)
    else:
        runtime = _tensorrt(ensemble, device, precision)
    runtime.chosen_because = chosen_because
    return runtime


def _onnxruntime(ensemble: LoadedEnsemble, device: str | None, threads: int | None,
                 precision: str | None) -> EnsembleRuntime:
    from engine.runtimes.cache import onnx_for
    from engine.runtimes.ort_backend import OnnxRuntimeEnsemble

    if device not in (None, "cpu"):
        raise BackendUnavailableError(
            f"backend 'onnxruntime' runs on the CPU in ivuscal; "
            f"for {device!r} use --backend tensorrt or --backend torch"
        )
    if precision not in (None, "fp32"):
        raise InputError(f"backend 'onnxruntime' runs in fp32 on the CPU, not {precision!r}")
    return OnnxRuntimeEnsemble(ensemble, onnx_for(ensemble, "fp32"), threads=threads)


def _tensorrt(ensemble: LoadedEnsemble, device: str | None, precision: str | None) -> EnsembleRuntime:
    from engine.runtimes.cache import onnx_for
    from engine.runtimes.tensorrt_backend import TensorRTEnsemble

    precision = precision or "fp16"
    if precision not in ("fp16", "fp32"):
        raise InputError(f"backend 'tensorrt' builds fp16 or fp32 engines, not {precision!r}")
    return TensorRTEnsemble(ensemble, onnx_for(ensemble, precision), device=device, precision=precision)
