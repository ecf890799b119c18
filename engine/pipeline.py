"""The composed stages, in one place, for both drivers (offline analysis and the live engine):

    frames --polar--> PolarSampler --ensemble--> runtime.infer --filter--> StreamingCalciumFilter
           --quantify--> frame_arcs + LesionTracker

`CalciumPipeline.begin(calibration, image_shape)` sizes the buffers for one pullback
(`begin_rows(frame_spacing_mm, n_alines)` when only probability rows will come);
`process(frames, first_index)` takes Cartesian uint8 (B, H, W) or polar float32 (B, D, A) frames
in order, in batches of any size (the results do not depend on the batching); `end()` flushes
the filter and returns the last final frames and the pullback summary.
`process_probabilities` is the post-inference half (filter + quantify), for drivers that
already hold the ensemble's probabilities (e.g. rebuilding a report from a journal);
`sample` + `process_polar` are `process` split after polar sampling.

`process_chunks(pipeline, chunks)` is the offline driver (`ivuscal analyze`, `ivuscal bench
offline`): a worker thread decodes the next chunks and samples them to polar while the caller's
thread infers, filters and quantifies the current one (ONNX Runtime, NumPy's gathers and the
decoders release the GIL), with the same outputs as calling `process` chunk by chunk.
`CalciumPipeline(timer=...)` is the stage hook: `timer(stage)` is entered around each stage
("polar", "inference", "filter", "quantify"), e.g. a benchmark's stage clock.

Device residency: probabilities, spread and filter rows stay on the pipeline's `xp` (CuPy on a
GPU) and arcs are found there (`run_boundaries`). Per batch, one transfer brings back the run
boundaries of the provisional and final rows (the host rebuilds the bool rows from them) and,
unless `return_rows=False`, one more brings back the probability and spread rows.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import numpy as np

from engine.errors import InputError
from engine.filter import DEFAULT_WINDOW, StreamingCalciumFilter, check_window
from engine.geometry import PolarSampler
from engine.model.spec import InputSpec
from engine.quantify import Arc, ClinicalFindings, Lesion, LesionTracker, PullbackSummary, QuantifySettings
from engine.quantify.arcs import arcs_from_runs, calcium_from_runs, run_boundaries
from engine.xp import to_numpy


class Runtime(Protocol):
    """What the pipeline needs of an inference backend (engine/runtimes/)."""

    spec: InputSpec

    def infer(self, polar: Any) -> tuple[Any, Any]: ...


class CalibrationLike(Protocol):
    """Geometry and timing of a pullback (engine.dicom or the streaming start message), read-only."""

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]: ...

    @property
    def center_rc(self) -> tuple[float, float]: ...

    @property
    def frame_time_s(self) -> float: ...

    @property
    def pullback_rate_mm_s(self) -> float: ...


@dataclass(frozen=True)
class PipelineSettings:
    """Parameters of the stages after inference."""

    window_frames: int = DEFAULT_WINDOW[0]
    window_alines: int = DEFAULT_WINDOW[1]
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
    probability: np.ndarray | None  # float32 (A,), ensemble mean before the filter (None: return_rows=False)
    spread: np.ndarray | None  # float32 (A,), ensemble disagreement (None: return_rows=False)
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

    def __init__(
        self,
        runtime: Runtime | None,
        settings: PipelineSettings | None = None,
        xp: ModuleType | None = None,
        return_rows: bool = True,
        timer: Callable[[str], AbstractContextManager] | None = None,
    ) -> None:
        """`xp` (sampler, filter and arc arrays) defaults to the runtime's namespace, else NumPy.

        `return_rows=False` leaves `FrameOutput.probability` and `.spread` None, so that only arcs
        (and the calcium rows rebuilt from them) cross from the device. `timer(stage)` wraps each
        stage ("polar", "inference", "filter", "quantify"; see the module docstring).
        """
        self.runtime = runtime
        self._timer = timer or _untimed
        self.settings = settings or PipelineSettings()
        self.xp = xp if xp is not None else getattr(runtime, "xp", np)
        self.return_rows = return_rows
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
            self._sampler = PolarSampler(image_shape, calibration.center_rc, calibration.pixel_spacing_mm, spec,
                                         self.xp)

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

    @property
    def lesion_tracker(self) -> LesionTracker | None:
        """The running lesion state of the pullback in progress (None before `begin` and after `end`)."""
        return self._tracker

    def process(self, frames: Any, first_index: int) -> list[FrameOutput]:
        """Frames `first_index ..` (Cartesian uint8 (B, H, W) or polar float32 (B, D, A)) -> outputs."""
        return self.process_polar(self.sample(frames), first_index)

    def infer(self, frames: Any) -> tuple[Any, Any]:
        """The pre-filter half: frames (as for `process`) -> ensemble mean and spread (B, A) on `xp`."""
        return self._infer_polar(self.sample(frames))

    def sample(self, frames: Any) -> Any:
        """The polar stage alone: Cartesian uint8 frames through the sampler, or polar frames checked."""
        self._require_runtime()
        with self._timer("polar"):
            return self._polar(frames)

    def process_polar(self, polar: Any, first_index: int) -> list[FrameOutput]:
        """Polar float32 frames (B, D, A) from `sample` -> outputs (inference, filter, quantify)."""
        mean, spread = self._infer_polar(polar)
        return self.process_probabilities(mean, spread, first_index)

    def _infer_polar(self, polar: Any) -> tuple[Any, Any]:
        runtime = self._require_runtime()
        with self._timer("inference"):
            return runtime.infer(polar)

    def _require_runtime(self) -> Runtime:
        """The runtime of a started pipeline; raises for a pipeline built without one."""
        if self.runtime is None:
            raise RuntimeError("this pipeline has no runtime; use process_probabilities")
        self._started()
        return self.runtime

    def process_probabilities(self, mean: Any, spread: Any, first_index: int) -> list[FrameOutput]:
        """The post-inference stages: ensemble rows (B, A) of frames `first_index ..` -> outputs."""
        filt, tracker = self._started()
        mean, spread = self._on_xp(mean), self._on_xp(spread)
        if mean.ndim != 2 or mean.shape[1] != filt.n_alines or spread.shape != mean.shape:
            raise InputError(
                f"probabilities must be (B, {filt.n_alines}) with a matching spread, "
                f"got {mean.shape} and {spread.shape}"
            )
        if first_index != self._next:
            raise InputError(f"pipeline expected frame {self._next}, got frame {first_index}")
        with self._timer("filter"):
            steps = [filt.push(row) for row in mean]
        with self._timer("quantify"):
            finals = [pair for step in steps for pair in step.final]
            calcium, arcs = self._to_host([step.provisional[1] for step in steps] + [row for _, row in finals])
            rows = self._rows_to_host(mean, spread)
            outputs, k = [], len(steps)
            for offset, step in enumerate(steps):
                index, n_final = first_index + offset, len(step.final)
                final_indices = [i for i, _ in step.final]
                final, closed = self._finalize(final_indices, calcium[k : k + n_final], arcs[k : k + n_final], tracker)
                k += n_final
                prob, spread_row = (rows[0, offset], rows[1, offset]) if rows is not None else (None, None)
                outputs.append(FrameOutput(index, index * self._spacing, prob, spread_row, calcium[offset],
                                           arcs[offset], final, closed))
        self._next += len(steps)
        return outputs

    def end(self) -> PullbackOutput:
        """Flush the filter (last frame repeated) and close the lesions; the pullback is done."""
        filt, tracker = self._started()
        with self._timer("filter"):
            rows = filt.flush()
        with self._timer("quantify"):
            calcium, arcs = self._to_host([row for _, row in rows])
            final, _ = self._finalize([i for i, _ in rows], calcium, arcs, tracker)
            tracker.finish()
        summary = tracker.summary()
        self._filter = self._tracker = None
        return PullbackOutput(final, summary)

    def _started(self) -> tuple[StreamingCalciumFilter, LesionTracker]:
        if self._filter is None or self._tracker is None:
            raise InputError("pipeline not started: call begin() before processing frames")
        return self._filter, self._tracker

    def _on_xp(self, array: Any) -> Any:
        """`array` as float32 on the pipeline's namespace (one upload when it comes from the host)."""
        array = to_numpy(array) if self.xp is np else self.xp.asarray(array)
        return array.astype(np.float32, copy=False)

    def _to_host(self, rows: list[Any]) -> tuple[np.ndarray, list[list[Arc]]]:
        """Bool filter rows on `xp` -> host bool rows (n, A) and their arcs; only run boundaries cross."""
        n_alines = self._started()[0].n_alines
        if not rows:
            return np.zeros((0, n_alines), dtype=bool), []
        runs = to_numpy(self.xp.stack(run_boundaries(self.xp.stack(rows), self.xp)))
        return calcium_from_runs(runs, len(rows), n_alines), arcs_from_runs(runs, len(rows), n_alines)

    def _rows_to_host(self, mean: Any, spread: Any) -> np.ndarray | None:
        """Probability and spread (2, B, A) float32 on the host in one transfer, when asked for."""
        if not self.return_rows:
            return None
        return to_numpy(self.xp.stack((mean, spread)))

    def _finalize(
        self, indices: list[int], calcium: np.ndarray, arcs: list[list[Arc]], tracker: LesionTracker
    ) -> tuple[list[FinalFrame], list[Lesion]]:
        """Final frames `indices` (host rows and arcs) -> `FinalFrame`s, in order through the lesion tracker."""
        final, closed = [], []
        for index, row, row_arcs in zip(indices, calcium, arcs, strict=True):
            closed.extend(tracker.update(index, row, row_arcs))
            final.append(FinalFrame(index, index * self._spacing, row, row_arcs))
        return final, closed

    def _polar(self, frames: Any) -> Any:
        """Cartesian uint8 frames through the sampler, or polar frames checked against the spec."""
        if self.runtime is None:
            raise RuntimeError("a pipeline without a runtime has no polar input")
        spec = self.runtime.spec
        shape = tuple(getattr(frames, "shape", ()))
        if self._sampler is not None:
            if len(shape) != 3 or shape[1:] != self._sampler.image_shape or frames.dtype != np.uint8:
                rows, cols = self._sampler.image_shape
                raise InputError(
                    f"expected uint8 frames (B, {rows}, {cols}), got {getattr(frames, 'dtype', None)} {shape}"
                )
            return self._sampler(self.xp.asarray(frames))
        if len(shape) != 3 or shape[1:] != (spec.n_depth, spec.n_alines):
            raise InputError(f"expected polar frames (B, {spec.n_depth}, {spec.n_alines}), got {shape}")
        if frames.dtype == np.uint8:
            return self.xp.asarray(frames, dtype=np.float32) / np.float32(255.0)
        return self.xp.asarray(frames, dtype=np.float32)


def _untimed(_stage: str) -> AbstractContextManager:
    return nullcontext()


_DONE = object()


def process_chunks(
    pipeline: CalciumPipeline, chunks: Iterable[tuple[int, Any]], prefetch: int = 2
) -> Iterator[tuple[int, Any, list[FrameOutput]]]:
    """Drive a begun pipeline over `(first_index, frames)` chunks in order: yields (first_index, frames, outputs).

    With `prefetch` > 0 a worker thread pulls (decodes) up to `prefetch` chunks ahead and samples
    them to polar while this thread runs inference, filter and quantify: the outputs are those of
    `pipeline.process` chunk by chunk (`prefetch=0` does exactly that, in this thread). An error
    in decoding or sampling is raised here, at the chunk where it happened; closing the generator
    early stops the worker.
    """
    if prefetch < 0:
        raise InputError(f"prefetch must be >= 0, got {prefetch}")
    if prefetch == 0:
        for start, frames in chunks:
            yield start, frames, pipeline.process(frames, start)
        return
    ready: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for start, frames in chunks:
                if not hand_over((start, frames, pipeline.sample(frames))):
                    return
            hand_over(_DONE)
        except BaseException as error:
            hand_over(error)

    worker = threading.Thread(target=produce, name="ivuscal-decode", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            start, frames, polar = item
            yield start, frames, pipeline.process_polar(polar, start)
    finally:
        stop.set()
        worker.join()
