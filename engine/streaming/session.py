"""One stream's open pullback in the live engine: frame admission, inference batches, fills, summary.

A `StreamSession` lives while its stream has a pullback open (`engine.streaming.streams` frees it
when the pullback ends) and knows nothing of sockets; every method returns the events to publish
as `(kind, body)` pairs (docs/protocol.md). The processing is the shared
`engine.pipeline.CalciumPipeline`.

Admission is decided frame by frame, in arrival order: a frame is refused when its index is not
above the last admitted one (duplicate or reordered), when it jumps more than `max_gap` frames
ahead, or when its format or calibration differ from the pullback's. Admitted frames wait in
`pending` (consecutive indices) until `flush()` infers them as one batch; anything else that
publishes an event flushes first, so one stream's events come out in arrival order.

Frames never received are filled so that the filter and lesion tracking stay aligned: in a gap by
holding the last received frame's probabilities, before the first received frame by repeating
that frame's (as the filter pads its edge). Both are announced by a `gap` event and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.pipeline import CalciumPipeline, FinalFrame, FrameOutput
from engine.quantify import LesionTracker, total_arc_deg
from engine.reliability import frame_flag
from engine.streaming import protocol as p
from engine.streaming.journal import JournalWriter, journal_path

PipelineFactory = Callable[[], CalciumPipeline]
Event = tuple[str, dict[str, Any]]

FILL_GAP = "held the last received frame's probabilities"
FILL_LEAD = "repeated the first received frame's probabilities (as the filter pads its edge)"


class Refused(p.ProtocolError):
    """A message the stream refuses; `code` is the machine-readable reason (docs/protocol.md, 'Errors')."""

    def __init__(self, code: str, message: str, source: str | None = None) -> None:
        super().__init__(message, source=source)
        self.code = code


@dataclass(frozen=True)
class Arrival:
    """A frame and when it arrived (monotonic and wall clock, ns)."""

    message: p.FrameMessage
    received_ns: int
    received_wall_ns: int


def final_payload(frame: FinalFrame) -> dict[str, Any]:
    """One final frame as published: index, position, arcs, total arc, calcified flag."""
    return {
        "frame": frame.index,
        "position_mm": round(frame.position_mm, 6),
        "arcs": p.arcs_payload(frame.arcs),
        "total_arc_deg": total_arc_deg(frame.calcium),
        "calcified": bool(frame.arcs),
    }


def lesion_status(tracker: LesionTracker) -> dict[str, Any]:
    """The running lesion summary as the lesion tracker holds it (its definition of a calcified frame)."""
    return {
        "final_frames": tracker.n_frames,
        "calcified_frames": tracker.calcified_frames,
        "lesions_closed": len(tracker.lesions),
        "max_arc_deg": tracker.max_arc_deg,
        "in_calcium": tracker.open_lesion is not None,  # the latest final frames lie in a lesion still open
    }


def error_event(code: str, reason: str, message: p.Inbound | None = None) -> Event:
    """An `error` event about `message` (its pullback, seq and frame when it has them)."""
    body: dict[str, Any] = {"code": code, "reason": reason}
    if message is not None:
        body["pullback"] = message.pullback
        if isinstance(message, p.FrameMessage):
            body["seq"], body["frame"] = message.seq, message.frame_index
    return ("error", body)


class _Pullback:
    """The pullback in progress: its pipeline and journal, the frames waiting for inference, its counts."""

    def __init__(
        self, start: p.PullbackStart, pipeline: CalciumPipeline, journal: JournalWriter | None, dropped: int
    ) -> None:
        self.start = start
        self.pipeline = pipeline
        self.journal = journal
        self.expected = 0  # the lowest index the next frame may have (after the pending ones)
        self.pending: list[Arrival] = []
        self.lead_fill = False  # fill the frames before the first received one at the next flush
        self.last_rows: tuple[np.ndarray, np.ndarray] | None = None  # probability, spread of the last frame (A,)
        self.received = 0
        self.dropped = dropped
        self.filled = 0
        self.filled_ranges: list[list[int]] = []

    @property
    def pullback(self) -> str:
        return self.start.pullback


class StreamSession:
    """The open pullback of one stream id (a new pullback id supersedes it); no sockets."""

    def __init__(
        self,
        stream: str,
        pipeline_factory: PipelineFactory,
        *,
        journal_dir: Path | None,
        max_gap: int,
        owner: str | None = None,
        send_rows: bool = True,
        journal_fsync_s: float | None = 1.0,
    ) -> None:
        self.stream = stream
        self.pipeline_factory = pipeline_factory
        self.journal_dir = journal_dir
        self.journal_fsync_s = journal_fsync_s
        self.max_gap = max_gap
        self.owner = owner  # the client key that opened the stream (None without authentication)
        self.send_rows = send_rows
        self.expected_seq: int | None = None
        self.current: _Pullback | None = None
        self.last_seen = time.monotonic()
        self._source = f"stream {stream!r}"

    # ------------------------------------------------------------------ control

    def open(self, start: p.PullbackStart, received_wall_ns: int, started_ns: int, dropped: int = 0) -> list[Event]:
        """Begin pullback `start` (ending the current one as superseded once the new one is valid).

        `dropped`: frames of this pullback the engine dropped before it opened. Raises `Refused`.
        """
        if self.current is not None and self.current.pullback == start.pullback:
            raise Refused("in_progress", f"pullback {start.pullback!r} is already in progress", self._source)
        pipeline = self.pipeline_factory()
        if pipeline.runtime is None:
            raise RuntimeError("the session's pipeline factory built a pipeline without a runtime")
        spec = pipeline.runtime.spec
        if start.layout == "polar" and start.shape != (spec.n_depth, spec.n_alines):
            raise Refused(
                "format",
                f"polar frames must be {spec.n_depth} x {spec.n_alines} (depth x A-lines) for this model, "
                f"got {list(start.shape)}",
                self._source,
            )
        try:
            pipeline.begin(start.calibration, start.shape if start.layout == "cartesian" else None)
        except InputError as error:
            raise Refused("format", f"cannot start pullback {start.pullback!r}: {error}", self._source) from None
        events = self.close(f"superseded by pullback {start.pullback!r}", started_ns) if self.current else []
        journal = None
        if self.journal_dir is not None:
            meta = {
                "stream": self.stream,
                "pullback": start.pullback,
                "layout": start.layout,
                "shape": list(start.shape),
                "dtype": start.dtype,
                "calib": start.calibration.to_dict(),
                "n_alines": spec.n_alines,
                "model": getattr(pipeline.runtime, "model_id", ""),
                "settings": pipeline.settings.to_dict(),
            }
            path = journal_path(self.journal_dir, self.stream, start.pullback)
            journal = JournalWriter(path, meta, fsync_interval_s=self.journal_fsync_s)
        self.current = _Pullback(start, pipeline, journal, dropped)
        body = {
            "pullback": start.pullback,
            "layout": start.layout,
            "shape": list(start.shape),
            "n_frames": start.n_frames,
            "n_alines": spec.n_alines,
            "window_frames": pipeline.settings.window_frames,
            "window_alines": pipeline.settings.window_alines,
            "frame_spacing_mm": pipeline.frame_spacing_mm,
            "journal": str(journal.path) if journal else None,
            "received_wall_ns": received_wall_ns,
        }
        return [*events, ("started", body)]

    def end(self, end: p.PullbackEnd, started_ns: int) -> list[Event]:
        """The pullback's own `end`: fill frames missing up to `end.n_frames`, flush, summarise."""
        current = self._current()
        if current.pullback != end.pullback:
            raise Refused(
                "not_in_progress", f"end of pullback {end.pullback!r}, which is not in progress", self._source
            )
        events = self.flush(started_ns)
        missing = (end.n_frames or 0) - current.expected
        if missing > 0 and current.received:
            if missing > self.max_gap:
                reason = (
                    f"end.n_frames {end.n_frames} is {missing} frames past the last received frame; "
                    f"at most {self.max_gap} are filled (--max-gap), "
                    f"so the pullback ends at frame {current.expected - 1}"
                )
                events.append(error_event("jump", reason, end))
            else:
                events.extend(self._fill(current, end.n_frames or 0, FILL_GAP, "frames missing at end of pullback"))
        return [*events, *self.close(None, started_ns)]

    def close(self, reason: str | None, started_ns: int) -> list[Event]:
        """Finish the current pullback: by its own `end` when `reason` is None, else interrupted."""
        events = self.flush(started_ns)
        pullback, self.current = self.current, None
        if pullback is None:
            return events
        counts = {"received": pullback.received, "dropped": pullback.dropped, "filled": pullback.filled}
        body: dict[str, Any] = {
            "pullback": pullback.pullback,
            "n_frames": pullback.pipeline.frames_processed,
            **counts,
            "filled_frames": _expand(pullback.filled_ranges),
            "complete": reason is None and pullback.dropped == 0 and pullback.filled == 0,
            "reason": reason,
        }
        if pullback.pipeline.frames_processed == 0:
            if pullback.journal:
                pullback.journal.end({"n_frames": 0, **counts, "interrupted": reason})
            return [*events, ("summary", body)]
        tracker = pullback.pipeline.lesion_tracker
        output = pullback.pipeline.end()
        body["summary"] = output.summary.to_dict()
        if pullback.journal:
            pullback.journal.end(
                {**body["summary"], **counts, "filled_frames": body["filled_frames"], "interrupted": reason}
            )
        assert tracker is not None  # the pipeline was begun in open()
        final = {
            "pullback": pullback.pullback,
            "final": [final_payload(f) for f in output.final],
            "lesion": lesion_status(tracker),
        }
        return [*events, ("final", final), ("summary", body)]

    def abandon(self) -> None:
        """Drop the pullback without a summary (after an internal failure); its journal is closed as it stands."""
        pullback, self.current = self.current, None
        if pullback is not None and pullback.journal is not None:
            pullback.journal.close()

    # ------------------------------------------------------------------ frames

    def frame(self, arrival: Arrival, started_ns: int) -> list[Event]:
        """Admit or refuse one frame of the current pullback (same id); returns the events due now."""
        message = arrival.message
        current = self._current()
        if current.pullback != message.pullback:
            raise ValueError(f"frame of pullback {message.pullback!r} handed to pullback {current.pullback!r}")
        events = self._sequence(message)
        problem = self._refusal(current, message)
        if problem is not None:
            return [*self.flush(started_ns), *events, error_event(*problem, message)]
        if message.frame_index > current.expected:
            if current.received == 0:
                current.lead_fill = True  # filled from this frame's own probabilities at the flush
            else:
                events = [
                    *self.flush(started_ns),
                    *events,
                    *self._fill(current, message.frame_index, FILL_GAP, "frames not received"),
                ]
        elif events:
            events = [*self.flush(started_ns), *events]
        current.pending.append(arrival)
        current.expected = message.frame_index + 1
        current.received += 1
        return events

    def drop(self, message: p.FrameMessage, reason: str, started_ns: int) -> list[Event]:
        """A frame of the current pullback that the engine dropped: count it and say so (once)."""
        current = self._current()
        events = self._sequence(message)
        current.dropped += 1
        return [*self.flush(started_ns), *events, ("drop", drop_body(message, reason))]

    def flush(self, started_ns: int) -> list[Event]:
        """Infer the pending frames as one batch; returns their results (and the lead fill, if due)."""
        current = self.current
        if current is None or not current.pending:
            return []
        batch, current.pending = current.pending, []
        # One frame (the usual case when keeping up) goes in as a view of the received buffer.
        pixels = batch[0].message.pixels[None] if len(batch) == 1 else np.stack([a.message.pixels for a in batch])
        mean, spread = current.pipeline.infer(pixels)
        events: list[Event] = []
        first = batch[0].message.frame_index
        if current.lead_fill:
            current.lead_fill = False
            events.extend(
                self._fill(current, first, FILL_LEAD, "frames before the first received frame", (mean[0], spread[0]))
            )
        inferred_ns = time.monotonic_ns()
        # Inference is batched; the filter and tracker take one row at a time so that each result
        # carries the lesion status as of its own final frames, whatever the batching.
        for k, arrival in enumerate(batch):
            (out,) = current.pipeline.process_probabilities(mean[k : k + 1], spread[k : k + 1], first + k)
            self._journal(current, [out], None)
            timing = {
                "received_ns": arrival.received_ns,
                "received_wall_ns": arrival.received_wall_ns,
                "started_ns": started_ns,
                "inferred_ns": inferred_ns,
            }
            events.append(("result", self._result(current, out, arrival.message, timing)))
        return events

    @property
    def pending_frames(self) -> int:
        return len(self.current.pending) if self.current else 0

    def _current(self) -> _Pullback:
        if self.current is None:
            raise RuntimeError(f"stream {self.stream!r} has no pullback open")
        return self.current

    def _sequence(self, message: p.FrameMessage) -> list[Event]:
        """A `gap` event when `seq` does not follow the stream's previous frame message."""
        events: list[Event] = []
        if self.expected_seq is not None and message.seq != self.expected_seq:
            events.append(
                ("gap", {"pullback": message.pullback, "expected_seq": self.expected_seq, "seq": message.seq})
            )
        self.expected_seq = message.seq + 1
        return events

    def _refusal(self, current: _Pullback, message: p.FrameMessage) -> tuple[str, str] | None:
        """(code, reason) when this frame cannot be admitted, else None; constant time."""
        start = current.start
        if (message.layout, message.start.shape, str(message.pixels.dtype)) != (start.layout, start.shape, start.dtype):
            return "format", (
                f"frame is {message.layout} {list(message.pixels.shape)} {message.pixels.dtype}, "
                f"the pullback is {start.layout} {list(start.shape)} {start.dtype}"
            )
        if message.calibration != start.calibration:
            return "format", "frame calibration differs from the pullback's (start a new pullback to change it)"
        if message.frame_index < current.expected:
            return (
                "out_of_order",
                f"frame {message.frame_index} is a duplicate or out of order "
                f"(next expected {current.expected} or above)",
            )
        jump = message.frame_index - current.expected
        if jump > self.max_gap:
            return "jump", (
                f"frame {message.frame_index} would leave {jump} frames missing before it; "
                f"at most {self.max_gap} are filled per message (--max-gap)"
            )
        return None

    def _fill(
        self, current: _Pullback, up_to: int, how: str, reason: str, rows: tuple[Any, Any] | None = None
    ) -> list[Event]:
        """Frames from the pipeline's next one to `up_to - 1` were never received: fill them with `rows`.

        `rows` (probability, spread (A,)) default to the last received frame's.
        """
        first = current.pipeline.frames_processed
        n = up_to - first
        if n <= 0:
            return []
        if rows is None:
            if current.last_rows is None:
                raise RuntimeError("a gap fill without rows before any frame of the pullback was processed")
            rows = current.last_rows
        prob, spread = rows
        xp = current.pipeline.xp
        outputs = current.pipeline.process_probabilities(xp.tile(prob, (n, 1)), xp.tile(spread, (n, 1)), first)
        self._journal(current, outputs, reason)
        current.filled += n
        current.filled_ranges.append([first, up_to - 1])
        finals = [final_payload(f) for out in outputs for f in out.final]
        return [
            (
                "gap",
                {
                    "pullback": current.pullback,
                    "frames": list(range(first, up_to)),
                    "reason": reason,
                    "filled": how,
                    "final": finals,
                },
            )
        ]

    def _journal(self, current: _Pullback, outputs: list[FrameOutput], filled: str | None) -> None:
        probabilities = [o.probability for o in outputs if o.probability is not None]
        spreads = [o.spread for o in outputs if o.spread is not None]
        if len(probabilities) < len(outputs) or len(spreads) < len(outputs):
            raise RuntimeError("the session's pipeline returned no probability rows (built with return_rows=False)")
        current.last_rows = (probabilities[-1], spreads[-1])
        if current.journal:
            current.journal.rows(
                [o.index for o in outputs],
                [o.position_mm for o in outputs],
                np.stack(probabilities),
                np.stack(spreads),
                filled=filled,
            )

    def _result(
        self, current: _Pullback, out: FrameOutput, message: p.FrameMessage, timing: dict[str, int]
    ) -> dict[str, Any]:
        tracker = current.pipeline.lesion_tracker
        assert tracker is not None and out.probability is not None and out.spread is not None
        body: dict[str, Any] = {
            "pullback": current.pullback,
            "seq": message.seq,
            "frame": out.index,
            "t_acq": message.t_acq,
            "position_mm": round(out.position_mm, 6),
            "provisional": {
                "arcs": p.arcs_payload(out.provisional_arcs),
                "total_arc_deg": total_arc_deg(out.provisional),
                "calcified": bool(out.provisional_arcs),
            },
            "final": [final_payload(f) for f in out.final],
            "uncertainty": {
                "spread_mean": float(out.spread.mean()),
                "spread_max": float(out.spread.max()),
                "flagged": frame_flag(getattr(current.pipeline.runtime, "reliability", None), out.spread),
            },
            "lesion": lesion_status(tracker),
            "closed_lesions": [lesion.to_dict() for lesion in out.closed_lesions],
            "t": timing,
        }
        if self.send_rows:
            body["prob_u8"] = p.quantize_unit(out.probability)
            body["spread_u8"] = p.quantize_unit(out.spread)
        return body


def _expand(ranges: list[list[int]]) -> list[int]:
    """[[first, last], ...] -> every frame index in them."""
    return [i for first, last in ranges for i in range(first, last + 1)]


def drop_body(message: p.FrameMessage, reason: str) -> dict[str, Any]:
    """The body of a `drop` event: which frame of which pullback, and why."""
    return {"pullback": message.pullback, "seq": message.seq, "frame": message.frame_index, "reason": reason}
