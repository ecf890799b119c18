"""The composed stages, in one place, for both drivers (offline analysis and the live engine):

    frames --polar--> PolarSampler --ensemble--> runtime.infer --filter--> StreamingCalciumFilter
           --quantify--> frame_arcs + LesionTracker

`CalciumPipeline.begin(calibration, image_shape)` sizes the buffers for one pullback
(`begin_rows(frame_spacing_mm, n_alines)` when only probability rows will come);
`process(frames, first_index)` takes Cartesian uint8 (B, H, W) or polar float32 (B, D, A) frames
in order, in batches of any size (the results do not depend on the batching); `end()` flushes
the filter and returns the last final frames and the pullback summary.
`process_probabilities` is the post-inference half (filter + quantify), for drivers that
already hold the ensemble's probabilities (e.g. rebuilding a report from a journal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import numpy as np

from engine.errors import InputError
from engine.filter import StreamingCalciumFilter, check_window
from engine.geometry import PolarSampler
from engine.model.spec import InputSpec
from engine.quantify import Arc, ClinicalFindings, Lesion, LesionTracker, PullbackSummary, QuantifySettings, frame_arcs
from engine.xp import to_numpy


class Runtime(Protocol):
    """What the pipeline needs of an inference backend (engine/runtimes/)."""

    spec: InputSpec

    def infer(self, polar: Any) -> tuple[Any, Any]: ...


class CalibrationLike(Protocol):
    """Geometry and timing of a pullback (engine.dicom or the streaming start message)."""

    pixel_spacing_mm: tuple[float, float]
    center_rc: tuple[float, float]
    frame_time_s: float
    pullback_rate_mm_s: float


@dataclass(frozen=True)
class PipelineSettings:
    """Parameters of the stages after inference."""

    window_frames: int = 13
    window_alines: int = 61
    quantify: QuantifySettings = field(default_factory=QuantifySettings)
    findings: ClinicalFindings = field(default_factory=ClinicalFindings)

    def __post_init__(self) -> None:
        check_window("window_frames", self.window_frames)
        check_window("window_alines", self.window_alines)

    def to_dict(self) -> dict:
        return {
            "window_frames": self.window_frames,
            "window_alines": self.window_alines,
            "quantify": self.quantify.to_dict(),
            "findings": {
                "calcified_nodule": self.findings.calcified_nodule,
                "vessel_diameter_mm": self.findings.vessel_diameter_mm,
            },
        }


@dataclass(frozen=True)
class FinalFrame:
    """A frame whose filtered calcium is final."""

    index: int
    position_mm: float
    calcium: np.ndarray  # bool (A,)
    arcs: list[Arc]


@dataclass(frozen=True)
class FrameOutput:
    """What one processed frame yields."""

    index: int
    position_mm: float
    probability: np.ndarray  # float32 (A,), ensemble mean before the filter
    spread: np.ndarray  # float32 (A,), ensemble disagreement
    provisional: np.ndarray  # bool (A,), the filter as if the pullback ended here
    provisional_arcs: list[Arc]
    final: list[FinalFrame]  # frames that became final with this one (index - h)
    closed_lesions: list[Lesion]  # lesions that these final frames closed


class PullbackOutput(NamedTuple):
    """What `end()` returns: the last final frames and the pullback summary."""

    final: list[FinalFrame]
    summary: PullbackSummary


class CalciumPipeline:
    """decode -> polar -> ensemble -> filter -> quantify, for one pullback at a time."""

    def __init__(self, runtime: Runtime | None, settings: PipelineSettings | None = None, xp: ModuleType | None = None) -> None:
        """`xp` (sampler and filter arrays) defaults to the runtime's namespace, else NumPy."""
        self.runtime = runtime
        self.settings = settings or PipelineSettings()
        self.xp = xp if xp is not None else getattr(runtime, "xp", np)
        self._filter: StreamingCalciumFilter | None = None
        self._sampler: PolarSampler | None = None
        self._tracker: LesionTracker | None = None
        self._spacing = 0.0
        self._next = 0

    @property
    def frames_processed(self) -> int:
        return self._next

    @property
    def frame_spacing_mm(self) -> float:
        return self._spacing

    def begin(self, calibration: CalibrationLike, image_shape: tuple[int, int] | None = None) -> None:
        """Start a pullback of Cartesian frames of `image_shape`, or of polar frames when it is None."""
        if self.runtime is None:
            raise InputError("a pipeline without a runtime starts with begin_rows()")
        spacing = float(calibration.frame_time_s) * float(calibration.pullback_rate_mm_s)
        spec = self.runtime.spec
        self.begin_rows(spacing, spec.n_alines)
        if image_shape is not None:
            self._sampler = PolarSampler(image_shape, calibration.center_rc, calibration.pixel_spacing_mm, spec, self.xp)

    def begin_rows(self, frame_spacing_mm: float, n_alines: int) -> None:
        """Start a pullback fed with probability rows (`process_probabilities`) only."""
        spacing = float(frame_spacing_mm)
        if not np.isfinite(spacing) or spacing <= 0:
            raise InputError(f"frame spacing (frame time x pullback rate) must be positive, got {spacing!r} mm")
        s = self.settings
        self._spacing = spacing
        self._sampler = None
        self._filter = StreamingCalciumFilter(n_alines, s.window_frames, s.window_alines, xp=self.xp)
        self._tracker = LesionTracker(spacing, s.quantify, s.findings)
        self._next = 0

    def process(self, frames: Any, first_index: int) -> list[FrameOutput]:
        """Frames `first_index ..` (Cartesian uint8 (B, H, W) or polar float32 (B, D, A)) -> outputs."""
        if self.runtime is None:
            raise InputError("this pipeline has no runtime; use process_probabilities")
        self._started()
        polar = self._polar(frames)
        mean, spread = self.runtime.infer(polar)
        return self.process_probabilities(mean, spread, first_index)

    def process_probabilities(self, mean: Any, spread: Any, first_index: int) -> list[FrameOutput]:
        """The post-inference stages: ensemble rows (B, A) of frames `first_index ..` -> outputs."""
        filt, tracker = self._started()
        mean, spread = to_numpy(mean).astype(np.float32, copy=False), to_numpy(spread).astype(np.float32, copy=False)
        if mean.ndim != 2 or mean.shape[1] != filt.n_alines or spread.shape != mean.shape:
            raise InputError(
                f"probabilities must be (B, {filt.n_alines}) with a matching spread, got {mean.shape} and {spread.shape}"
            )
        if first_index != self._next:
            raise InputError(f"pipeline expected frame {self._next}, got frame {first_index}")
        outputs = []
        for offset, (row, spread_row) in enumerate(zip(mean, spread, strict=True)):
            index = first_index + offset
            step = filt.push(self.xp.asarray(row))
            final, closed = self._finalize(step.final, tracker)
            provisional = to_numpy(step.provisional[1])
            outputs.append(
                FrameOutput(index, index * self._spacing, row, spread_row, provisional, frame_arcs(provisional), final, closed)
            )
        self._next += len(mean)
        return outputs

    def end(self) -> PullbackOutput:
        """Flush the filter (last frame repeated) and close the lesions; the pullback is done."""
        filt, tracker = self._started()
        final, _ = self._finalize(filt.flush(), tracker)
        tracker.finish()
        summary = tracker.summary()
        self._filter = self._tracker = None
        return PullbackOutput(final, summary)

    def _started(self) -> tuple[StreamingCalciumFilter, LesionTracker]:
        if self._filter is None or self._tracker is None:
            raise InputError("pipeline not started: call begin() before processing frames")
        return self._filter, self._tracker

    def _finalize(self, rows: list[tuple[int, Any]], tracker: LesionTracker) -> tuple[list[FinalFrame], list[Lesion]]:
        final, closed = [], []
        for index, row in rows:
            calcium = to_numpy(row)
            closed.extend(tracker.update(index, calcium))
            final.append(FinalFrame(index, index * self._spacing, calcium, frame_arcs(calcium)))
        return final, closed

    def _polar(self, frames: Any) -> Any:
        """Cartesian uint8 frames through the sampler, or polar frames checked against the spec."""
        spec = self.runtime.spec
        shape = tuple(getattr(frames, "shape", ()))
        if self._sampler is not None:
            if len(shape) != 3 or shape[1:] != self._sampler.image_shape or frames.dtype != np.uint8:
                rows, cols = self._sampler.image_shape
                raise InputError(f"expected uint8 frames (B, {rows}, {cols}), got {getattr(frames, 'dtype', None)} {shape}")
            return self._sampler(self.xp.asarray(frames))
        if len(shape) != 3 or shape[1:] != (spec.n_depth, spec.n_alines):
            raise InputError(f"expected polar frames (B, {spec.n_depth}, {spec.n_alines}), got {shape}")
        if frames.dtype == np.uint8:
            return self.xp.asarray(frames, dtype=np.float32) / np.float32(255.0)
        return self.xp.asarray(frames, dtype=np.float32)
