"""TensorRT backend: an engine built from the fused ONNX graph, run on CuPy device buffers.

The engine is built once per (GPU, TensorRT version, graph hash, precision, batch range) and kept
in the cache folder. Precision lives in the graph (strong typing, the only mode TensorRT 11
has): "fp16" builds from the export whose members run in half precision with float32 input,
sigmoid and averaging; "fp32" builds from the float32 export. One optimisation profile covers
batch sizes 1..max_batch; larger batches run in chunks. Before anything is bound, the loaded
engine's input and output tensors are checked against the graph contract (names, modes, float32),
so a stale or foreign engine file fails with a clear error instead of writing through wrong
addresses. Inference binds CuPy arrays by address (`set_tensor_address`) and enqueues
(`execute_async_v3`) on the runtime's own non-blocking CUDA stream, ordered after the caller's
current stream (which produced the input) and before it (which reads the output) by events:
inputs and outputs stay on the device, and TensorRT never runs on the legacy default stream,
which would serialise it with all other work on the GPU.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from engine import atomic
from engine.cache_paths import cache_subdir
from engine.errors import BackendUnavailableError, InputError, InternalError
from engine.model.weights import LoadedEnsemble, file_sha256
from engine.runtimes.base import EnsembleRuntime
from engine.runtimes.graph import INPUT_NAME, OUTPUT_NAMES
from engine.xp import cupy_or_none

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30


def import_tensorrt() -> Any:
    """The tensorrt module, or a BackendUnavailableError that says how to install it."""
    try:
        import tensorrt  # optional GPU dependency
    except ImportError as error:
        raise BackendUnavailableError(
            "backend 'tensorrt' needs the tensorrt package: pip install 'ivuscal[gpu]'"
        ) from error
    return tensorrt


def require_cupy(backend: str) -> Any:
    cp = cupy_or_none()
    if cp is None:
        raise BackendUnavailableError(
            f"backend '{backend}' needs CuPy and a CUDA GPU: pip install 'ivuscal[gpu]' on a machine with one"
        )
    return cp


class TensorRTEnsemble(EnsembleRuntime):
    """The fused ensemble as a TensorRT engine; CuPy arrays in and out."""

    name = "tensorrt"

    def __init__(
        self,
        ensemble: LoadedEnsemble,
        onnx_path: Path,
        device: str | None = None,
        precision: str = "fp16",
        max_batch: int = 256,
        opt_batch: int = 16,
    ) -> None:
        trt = import_tensorrt()
        cp = require_cupy(self.name)
        super().__init__(ensemble, cp)
        if not 1 <= opt_batch <= max_batch:
            raise InputError(f"tensorrt: need 1 <= opt_batch <= max_batch, got {opt_batch}, {max_batch}")
        self.device_index = _device_index(device, cp)
        self.precision = precision
        self.max_batch = max_batch
        self.opt_batch = opt_batch
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        with cp.cuda.Device(self.device_index):
            self.gpu_name = cp.cuda.runtime.getDeviceProperties(self.device_index)["name"].decode()
            self.engine_path = self._engine_file(Path(onnx_path))
            if not self.engine_path.is_file():
                self._build(Path(onnx_path))
            self._runtime = trt.Runtime(self._logger)  # kept: it must outlive the engine
            self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self._engine is None:
                raise InternalError(
                    f"TensorRT could not load its cached engine {self.engine_path} (delete it to rebuild)"
                )
            check_io(self._engine, trt, self.engine_path)
            self._context = self._engine.create_execution_context()
            self._stream = cp.cuda.Stream(non_blocking=True)

    def _engine_file(self, onnx_path: Path) -> Path:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu_name).strip("-")
        key = (f"{file_sha256(onnx_path)[:16]}-{gpu}-trt{self._trt.__version__}-{self.precision}"
               f"-b{self.opt_batch}-{self.max_batch}")
        return cache_subdir("tensorrt") / f"{key}.plan"

    def _build(self, onnx_path: Path) -> None:
        """Parse the graph, build a serialized engine over batch sizes 1..max_batch, cache it."""
        trt = self._trt
        log.warning("building a TensorRT %s engine for %s on %s (once; cached in %s)",
                    self.precision, self.model_id, self.gpu_name, self.engine_path.parent)
        builder = trt.Builder(self._logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):  # TensorRT 10; always on in 11
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise InternalError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32, not TF32 tensor cores
        profile = builder.create_optimization_profile()
        frame = (self.spec.n_depth, self.spec.n_alines)
        profile.set_shape(INPUT_NAME, (1, *frame), (self.opt_batch, *frame), (self.max_batch, *frame))
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise InternalError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
        atomic.write_bytes(self.engine_path, bytes(serialized))

    def _run(self, polar: Any) -> tuple[Any, Any]:
        cp = self.xp
        batch = polar.shape[0]
        with cp.cuda.Device(self.device_index):
            caller = cp.cuda.get_current_stream()
            probability = cp.empty((batch, self.spec.n_alines), dtype=cp.float32)
            spread = cp.empty_like(probability)
            self._stream.wait_event(caller.record())  # the input (and the outputs' allocation) is ready
            for start in range(0, batch, self.max_batch):
                stop = min(start + self.max_batch, batch)
                self._enqueue(polar[start:stop], probability[start:stop], spread[start:stop], self._stream.ptr)
            caller.wait_event(self._stream.record())  # the caller's later work sees the results
        return probability, spread

    def _enqueue(self, polar: Any, probability: Any, spread: Any, stream_ptr: int) -> None:
        context = self._context
        if not context.set_input_shape(INPUT_NAME, tuple(polar.shape)):
            raise InternalError(f"TensorRT rejected input shape {tuple(polar.shape)}")
        for name, array in zip((INPUT_NAME, *OUTPUT_NAMES), (polar, probability, spread), strict=True):
            context.set_tensor_address(name, array.data.ptr)
        if not context.execute_async_v3(stream_ptr):
            raise InternalError("TensorRT execute_async_v3 failed")

    def describe(self) -> dict:
        return self._description(
            device=f"cuda:{self.device_index} ({self.gpu_name})",
            threads=None,
            precision=self.precision,
            max_batch=self.max_batch,
            tensorrt=self._trt.__version__,
            engine=str(self.engine_path),
            stream="own non-blocking stream",
        )


def check_io(engine: Any, trt: Any, source: Path) -> None:
    """The engine's I/O tensors must be exactly `polar` in, `probability` and `spread` out, all float32."""
    expected = {INPUT_NAME: "INPUT", **{name: "OUTPUT" for name in OUTPUT_NAMES}}
    found = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        found[name] = (engine.get_tensor_mode(name), engine.get_tensor_dtype(name))
    problems = []
    if set(found) != set(expected):
        problems.append(f"tensors {sorted(found)}, expected {sorted(expected)}")
    for name, mode in expected.items():
        if name not in found:
            continue
        actual_mode, dtype = found[name]
        if actual_mode != getattr(trt.TensorIOMode, mode):
            problems.append(f"{name} is {actual_mode}, expected {mode}")
        if dtype != trt.DataType.FLOAT:
            problems.append(f"{name} is {dtype}, expected float32")
    if problems:
        raise InternalError(f"TensorRT engine {source} does not match the ensemble graph ({'; '.join(problems)}); "
                            "delete it to rebuild")


def _device_index(device: str | None, cp: Any) -> int:
    """'cuda' or 'cuda:N' (None means cuda:0) to N; InputError for a CPU or malformed device."""
    match = re.fullmatch(r"cuda(?::(\d+))?", device or "cuda")
    if match is None:
        raise InputError(f"backend 'tensorrt' runs on 'cuda' or 'cuda:N', not {device!r}")
    index = int(match.group(1) or 0)
    count = cp.cuda.runtime.getDeviceCount()
    if index >= count:
        raise BackendUnavailableError(f"no CUDA device {index} (found {count})")
    return index
