"""PyTorch backend: the fused ensemble as a torch module, on the CPU or on a CUDA GPU.

On the CPU it runs eagerly in float32 (NumPy in, NumPy out). On CUDA it takes and returns CuPy
arrays, exchanged with torch through DLPack without copies, runs on CuPy's current stream, under
float16 or bfloat16 autocast (members only: sigmoid, mean and spread stay float32) or in true
float32 (TF32 convolutions off), and replays a CUDA graph captured once per batch size, so a
batch costs one graph launch.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.errors import BackendUnavailableError, InputError
from engine.model.weights import LoadedEnsemble
from engine.runtimes.base import EnsembleRuntime
from engine.runtimes.fused import FusedEnsemble
from engine.xp import cupy_or_none

AMP_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class _Graph:
    """A captured CUDA graph with its static input and output tensors."""

    graph: torch.cuda.CUDAGraph
    polar: torch.Tensor
    probability: torch.Tensor
    spread: torch.Tensor


def parse_device(device: str | None) -> torch.device:
    """'cpu', 'cuda' or 'cuda:N' to a torch device; InputError for anything else."""
    try:
        parsed = torch.device(device or "cpu")
    except RuntimeError as error:
        raise InputError(f"unknown device {device!r} (expected 'cpu', 'cuda' or 'cuda:N')") from error
    if parsed.type not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r} (expected 'cpu', 'cuda' or 'cuda:N')")
    return parsed


class TorchEnsemble(EnsembleRuntime):
    """The fused ensemble in PyTorch; see the module docstring for the CPU and CUDA paths."""

    name = "torch"

    def __init__(
        self,
        ensemble: LoadedEnsemble,
        device: str | None = None,
        threads: int | None = None,
        precision: str | None = None,
        cuda_graphs: bool = True,
    ) -> None:
        self.device = parse_device(device)
        on_cuda = self.device.type == "cuda"
        self.precision = precision or ("fp16" if on_cuda else "fp32")
        if self.precision not in AMP_DTYPES:
            raise InputError(f"unknown precision {self.precision!r} (expected one of {sorted(AMP_DTYPES)})")
        if not on_cuda and self.precision != "fp32":
            raise InputError("the torch backend runs fp16/bf16 only on CUDA; use precision 'fp32' on the CPU")
        if threads is not None and threads < 1:
            raise InputError(f"--threads must be at least 1, got {threads}")
        self._cp = _require_cuda(self.device) if on_cuda else None
        if on_cuda:
            self.device = torch.device("cuda", self.device.index or 0)
        super().__init__(ensemble, self._cp if self._cp is not None else np)
        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.cuda_graphs = cuda_graphs and on_cuda
        self._module = FusedEnsemble(ensemble.models).eval().to(self.device)
        self._graphs: dict[int, _Graph] = {}

    def _forward(self, polar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        amp = AMP_DTYPES[self.precision]
        # cache_enabled=False: autocast's weight-cast cache must not outlive a CUDA graph capture
        autocast = torch.autocast(self.device.type, dtype=amp, cache_enabled=False) if amp else nullcontext()
        # fp32 means fp32: no TF32 convolutions (cuDNN's default on Ampere and later)
        exact = torch.backends.cudnn.flags(enabled=True, allow_tf32=False) if amp is None else nullcontext()
        with torch.inference_mode(), autocast, exact:
            probability, spread = self._module(polar)
        return probability.float(), spread.float()

    def _run(self, polar: Any) -> tuple[Any, Any]:
        if self._cp is None:
            probability, spread = self._forward(torch.from_numpy(polar))
            return probability.numpy(), spread.numpy()
        cp = self._cp
        with cp.cuda.Device(self.device.index):
            with torch.cuda.stream(self._torch_stream(cp.cuda.get_current_stream().ptr)):
                x = torch.from_dlpack(polar)
                if self.cuda_graphs:
                    probability, spread = self._replay(x)
                else:
                    probability, spread = self._forward(x)
                return cp.from_dlpack(probability), cp.from_dlpack(spread)

    def _torch_stream(self, ptr: int) -> torch.cuda.Stream:
        """Torch's view of CuPy's current stream (0 is the legacy default stream both share)."""
        if ptr == 0:
            return torch.cuda.default_stream(self.device)
        return torch.cuda.ExternalStream(ptr, device=self.device)

    def _replay(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the graph captured for this batch size (capturing it on first use)."""
        graph = self._graphs.get(x.shape[0])
        if graph is None:
            graph = self._graphs[x.shape[0]] = self._capture(x.shape[0])
        graph.polar.copy_(x)
        graph.graph.replay()
        return graph.probability.clone(), graph.spread.clone()

    def _capture(self, batch: int) -> _Graph:
        static = torch.zeros((batch, self.spec.n_depth, self.spec.n_alines), device=self.device)
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: cuDNN autotuning and allocator growth stay out of the graph
                self._forward(static)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            probability, spread = self._forward(static)
        return _Graph(graph, static, probability, spread)

    def describe(self) -> dict:
        device = str(self.device)
        if self.device.type == "cuda":
            device = f"{device} ({torch.cuda.get_device_name(self.device)})"
        return self._description(
            device=device,
            threads=self.threads,
            precision=self.precision,
            cuda_graphs=self.cuda_graphs,
            torch=torch.__version__,
        )


def _require_cuda(device: torch.device) -> Any:
    """CuPy, after checking that torch sees the CUDA device; BackendUnavailableError otherwise."""
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"backend 'torch' on {device} needs a CUDA GPU and a CUDA build of torch (this torch {torch.__version__} sees none)"
        )
    if (device.index or 0) >= torch.cuda.device_count():
        raise BackendUnavailableError(f"no CUDA device {device} (torch sees {torch.cuda.device_count()})")
    cp = cupy_or_none()
    if cp is None:
        raise BackendUnavailableError("backend 'torch' on CUDA returns CuPy arrays and needs CuPy: pip install 'ivuscal[gpu]'")
    return cp
