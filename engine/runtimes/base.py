"""The one interface every inference backend implements: polar frames in, ensemble probability out.

`EnsembleRuntime.infer(polar)` takes (B, D, A) float32 in [0, 1] on the runtime's array namespace
`xp` (NumPy, or CuPy for device backends) and returns `(probability, spread)`, two (B, A) float32
arrays on the same namespace: the mean and the member standard deviation of the members' sigmoid
probabilities, as `engine.model.weights.ensemble_probabilities` defines them. Inputs from the
other namespace are moved (one copy); device backends never bring results back to the host.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import InputError
from engine.model.spec import InputSpec
from engine.xp import namespace_of

if TYPE_CHECKING:  # importing the weights module pulls in torch; the interface does not need it
    from engine.model.weights import LoadedEnsemble


class EnsembleRuntime(ABC):
    """A loaded ensemble on one backend and device; subclasses implement `_run` and `describe`."""

    name: str = ""

    def __init__(self, ensemble: LoadedEnsemble, xp: ModuleType) -> None:
        self.spec: InputSpec = ensemble.spec
        self.model_id: str = ensemble.model_id
        self.weights_sha256: str = ensemble.sha256
        self.n_members: int = ensemble.n_members
        self.reliability = ensemble.reliability  # engine.reliability.Reliability | None
        self.xp = xp
        self.chosen_because: str | None = None  # set by create_runtime("auto"): why this backend

    def infer(self, polar: Any) -> tuple[Any, Any]:
        """(B, D, A) float32 polar frames -> (probability, spread), each (B, A) float32 on `xp`."""
        polar = self.prepare(polar)
        if polar.shape[0] == 0:
            empty = self.xp.zeros((0, self.spec.n_alines), dtype=self.xp.float32)
            return empty, empty.copy()
        return self._run(polar)

    def prepare(self, polar: Any) -> Any:
        """Validate `polar` against the spec and return it C-contiguous float32 on `xp`."""
        if namespace_of(polar) is np:  # anything but CuPy: NumPy, lists, CPU tensors
            polar = np.asarray(polar)
        shape = tuple(polar.shape)
        expected = (self.spec.n_depth, self.spec.n_alines)
        if len(shape) != 3 or shape[1:] != expected:
            raise InputError(
                f"{self.name}: polar frames must have shape (batch, {expected[0]}, {expected[1]}), got {shape}"
            )
        dtype = np.dtype(polar.dtype)
        if dtype.kind != "f":
            raise InputError(f"{self.name}: polar frames must be floating point in [0, 1], got {dtype} (divide by 255)")
        if namespace_of(polar) is not self.xp:
            polar = self.xp.asarray(polar.get() if hasattr(polar, "get") else polar)
        polar = self.xp.ascontiguousarray(polar, dtype=self.xp.float32)
        if not bool(self.xp.isfinite(polar).all()):
            raise InputError(f"{self.name}: polar frames contain NaN or infinite values")
        return polar

    @abstractmethod
    def _run(self, polar: Any) -> tuple[Any, Any]:
        """Inference on validated, non-empty, contiguous float32 frames on `xp`."""

    @abstractmethod
    def describe(self) -> dict:
        """What runs: backend, device, threads, precision, model (for reports and benchmarks)."""

    def _description(self, **fields: Any) -> dict:
        auto = {"auto": self.chosen_because} if self.chosen_because else {}
        return {"backend": self.name, "model_id": self.model_id, "n_members": self.n_members, **fields, **auto}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
