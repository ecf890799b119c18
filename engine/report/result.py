"""The result of analysing one pullback, collected from the pipeline's outputs.

Only per-frame rows are kept (probability, spread, calcium: a few bytes per A-line), never the
decoded frames, so memory grows with the number of frames x A-lines only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.pipeline import FinalFrame, FrameOutput, PipelineSettings, PullbackOutput
from engine.quantify import PullbackSummary


@dataclass
class AnalysisResult:
    """Everything the report files and plots are made of."""

    probability: np.ndarray  # float32 (frames, A), ensemble mean before the filter
    spread: np.ndarray  # float32 (frames, A)
    calcium: np.ndarray  # bool (frames, A), after the filter
    frame_position_mm: np.ndarray  # float64 (frames,)
    summary: PullbackSummary
    settings: PipelineSettings
    model: dict[str, Any] = field(default_factory=dict)  # model id, backend
    source: dict[str, Any] = field(default_factory=dict)  # file name, calibration (no patient data)

    @property
    def n_frames(self) -> int:
        return int(self.probability.shape[0])

    @property
    def n_alines(self) -> int:
        return int(self.probability.shape[1])

    @property
    def angles_deg(self) -> np.ndarray:
        """A-line centre angles (docs/conventions.md)."""
        return (np.arange(self.n_alines) + 0.5) * 360.0 / self.n_alines


class ResultCollector:
    """Gathers `FrameOutput`s (any batching) and the final `PullbackOutput` into an `AnalysisResult`.

    Rows are stored in preallocated arrays when the frame count is known, grown otherwise.
    """

    def __init__(self, n_alines: int, n_frames: int | None = None) -> None:
        capacity = max(int(n_frames or 0), 16)
        self._prob = np.zeros((capacity, n_alines), dtype=np.float32)
        self._spread = np.zeros((capacity, n_alines), dtype=np.float32)
        self._calcium = np.zeros((capacity, n_alines), dtype=bool)
        self._n = 0

    def add(self, outputs: list[FrameOutput]) -> None:
        for out in outputs:
            self._ensure(out.index + 1)
            self._prob[out.index] = out.probability
            self._spread[out.index] = out.spread
            self._n = max(self._n, out.index + 1)
            self._add_final(out.final)

    def finish(self, end: PullbackOutput, frame_spacing_mm: float, settings: PipelineSettings,
               **meta: Any) -> AnalysisResult:
        self._add_final(end.final)
        n = self._n
        return AnalysisResult(
            probability=self._prob[:n].copy(),
            spread=self._spread[:n].copy(),
            calcium=self._calcium[:n].copy(),
            frame_position_mm=np.arange(n) * frame_spacing_mm,
            summary=end.summary,
            settings=settings,
            **meta,
        )

    def _add_final(self, frames: list[FinalFrame]) -> None:
        for f in frames:
            self._ensure(f.index + 1)
            self._calcium[f.index] = f.calcium

    def _ensure(self, n: int) -> None:
        if n <= len(self._prob):
            return
        size = max(n, 2 * len(self._prob))
        for name in ("_prob", "_spread", "_calcium"):
            old = getattr(self, name)
            new = np.zeros((size, old.shape[1]), dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
