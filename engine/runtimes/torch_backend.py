"""PyTorch backend: the fused ensemble as a torch module, on the CPU or on a CUDA GPU.

On the CPU it runs eagerly in float32 (NumPy in, NumPy out). On CUDA it takes and returns CuPy
arrays, exchanged with torch through DLPack without copies, runs on CuPy's current stream, under
float16 or bfloat16 autocast (members only: sigmoid, mean and spread stay float32) or in true
float32 (TF32 convolutions off), and replays a CUDA graph captured once per batch size, so a
batch costs one graph launch. Captures are bounded: batch sizes up to `GRAPH_MAX_BATCH` are
captured, at most `MAX_GRAPHS` of them are kept (the least recently used is released), and other
batch sizes run eagerly; a live engine's catch-up batches (1..max_batch) thus cannot pile up
graphs and their static buffers without limit.
"""

from __future__ import annotations

from collections import OrderedDict
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
MAX_GRAPHS = 8  # captured batch sizes kept at once (least recently used released first)
GRAPH_MAX_BATCH = 64  # larger batches run eagerly (a graph per size would pin their activations)


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
        self._graphs: OrderedDict[int, _Graph] = OrderedDict()

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
                if self.cuda_graphs and x.shape[0] <= GRAPH_MAX_BATCH:
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
        """Run the graph captured for this batch size (capturing it on first use, within the bound)."""
        batch = x.shape[0]
        graph = self._graphs.get(batch)
        if graph is None:
            if len(self._graphs) >= MAX_GRAPHS:
                self._graphs.popitem(last=False)  # its graph and static tensors are freed with it
            graph = self._graphs[batch] = self._capture(batch)
        self._graphs.move_to_end(batch)
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
            graphs_captured=sorted(self._graphs),
            torch=torch.__version__,
        )


def _require_cuda(device: torch.device) -> Any:
    """CuPy, after checking that torch sees the CUDA device; BackendUnavailableError otherwise."""
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"backend 'torch' on {device} needs a CUDA GPU and a CUDA build of torch "
            f"(this torch {torch.__version__} sees none)"
        )
    if (device.index or 0) >= torch.cuda.device_count():
        raise BackendUnavailableError(f"no CUDA device {device} (torch sees {torch.cuda.device_count()})")
    cp = cupy_or_none()
    if cp is None:
        raise BackendUnavailableError(
            "backend 'torch' on CUDA returns CuPy arrays and needs CuPy: pip install 'ivuscal[gpu]'"
        )
    return cp
