"""ONNX Runtime backend: the fused graph on the CPU (the default where no GPU is present).

One session, sequential execution, every graph optimisation, as many intra-op threads as the
process may use physical cores. ONNX Runtime's CPU kernels compute each frame of a batch
independently, so a frame's result does not depend on what else is in its batch
(tests/test_runtimes_contract.py checks equality bit for bit).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BackendUnavailableError, InputError
from engine.model.weights import LoadedEnsemble
from engine.runtimes.base import EnsembleRuntime
from engine.runtimes.onnx_export import INPUT_NAME, OUTPUT_NAMES


def physical_cores() -> int:
    """Physical cores this process may run on (logical CPUs allowed by affinity, capped by cores)."""
    try:
        import psutil  # noqa: PLC0415

        physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        physical = os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical
    return max(1, min(physical, allowed))


class OnnxRuntimeEnsemble(EnsembleRuntime):
    """The fused ensemble in an ONNX Runtime CPU session; inputs and outputs are NumPy arrays."""

    name = "onnxruntime"

    def __init__(self, ensemble: LoadedEnsemble, onnx_path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort  # noqa: PLC0415
        except ImportError as error:
            raise BackendUnavailableError("backend 'onnxruntime' needs the onnxruntime package: pip install onnxruntime") from error
        super().__init__(ensemble, np)
        if threads is not None and threads < 1:
            raise InputError(f"--threads must be at least 1, got {threads}")
        self.threads = threads or physical_cores()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.onnx_path = Path(onnx_path)
        self._session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self._version = ort.__version__

    def _run(self, polar: Any) -> tuple[Any, Any]:
        probability, spread = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: polar})
        return probability, spread

    def describe(self) -> dict:
        return self._description(
            device="cpu",
            threads=self.threads,
            precision="fp32",
            onnxruntime=self._version,
            onnx=str(self.onnx_path),
        )
