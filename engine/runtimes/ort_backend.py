"""ONNX Runtime backend: the fused graph on the CPU (the default where no GPU is present).

One session, sequential execution, every graph optimisation, as many intra-op threads as the
process may use physical cores. Idle worker threads sleep instead of spinning (`spin=False`):
on the product's two cores the rest of the pipeline (sampling, filter, I/O) and other processes
need the CPU, and spinning workers halved ONNX Runtime's own throughput on a shared machine
(30 vs 65 frames/s at batch 1 with two threads on a loaded machine).

Batch composition: with one thread a frame's result is bit-identical alone or in any batch;
with more, ONNX Runtime splits a lone frame's work differently, which changes float32 rounding
(< 1e-6 seen). tests/test_runtimes.py checks both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BackendUnavailableError, InputError
from engine.model.weights import LoadedEnsemble
from engine.runtimes.base import EnsembleRuntime
from engine.runtimes.graph import INPUT_NAME, OUTPUT_NAMES

SESSION_BATCH = 8  # frames per session run; fewer calls = fewer GIL hand-offs for the live engine (docs/runtimes.md)


def physical_cores() -> int:
    """Physical cores this process may run on (logical CPUs allowed by affinity, capped by cores)."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        physical = os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical
    return max(1, min(physical, allowed))


class OnnxRuntimeEnsemble(EnsembleRuntime):
    """The fused ensemble in an ONNX Runtime CPU session; inputs and outputs are NumPy arrays."""

    name = "onnxruntime"

    def __init__(self, ensemble: LoadedEnsemble, onnx_path: Path, threads: int | None = None,
                 spin: bool = False) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise BackendUnavailableError(
                "backend 'onnxruntime' needs the onnxruntime package: pip install onnxruntime"
            ) from error
        super().__init__(ensemble, np)
        if threads is not None and threads < 1:
            raise InputError(f"--threads must be at least 1, got {threads}")
        self.threads = threads or physical_cores()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.spin = spin
        self.onnx_path = Path(onnx_path)
        try:
            self._session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own (unexported) exception types
            raise InputError(f"not a loadable ONNX graph ({type(error).__name__})", source=str(onnx_path)) from error
        self._version = ort.__version__
        made_from = self._session.get_modelmeta().custom_metadata_map.get("ivuscal.weights_sha256")
        if ensemble.sha256 and made_from != ensemble.sha256:
            raise InputError(f"ONNX graph was exported from other weights than {ensemble.path}", source=str(onnx_path))

    def _run(self, polar: Any) -> tuple[Any, Any]:
        """Session runs of at most `SESSION_BATCH` frames: ONNX Runtime's arena keeps the largest
        batch's activations (~8 MB a frame), so a 64-frame chunk would pin ~0.5 GB for good."""
        if len(polar) <= SESSION_BATCH:
            probability, spread = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: polar})
            return probability, spread
        probability = np.empty((len(polar), self.spec.n_alines), dtype=np.float32)
        spread = np.empty_like(probability)
        for start in range(0, len(polar), SESSION_BATCH):
            stop = start + SESSION_BATCH
            probability[start:stop], spread[start:stop] = self._session.run(
                list(OUTPUT_NAMES), {INPUT_NAME: polar[start:stop]}
            )
        return probability, spread

    def describe(self) -> dict:
        return self._description(
            device="cpu",
            threads=self.threads,
            precision="fp32",
            spinning=self.spin,
            onnxruntime=self._version,
            onnx=str(self.onnx_path),
        )
