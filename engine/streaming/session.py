"""One stream's state in the live engine: its current pullback, pipeline and journal.

A `StreamSession` turns decoded messages into events (`(kind, body)` pairs, docs/protocol.md)
and knows nothing of sockets. The processing is the shared `engine.pipeline.CalciumPipeline`.
Frames must come in frame order; a frame index that skips ahead (lost or dropped frames) is
announced by a `gap` event and the missing frames are filled by holding the last processed
frame's probabilities (no inference), so that the filter and lesion tracking stay aligned.
A frame of a new pullback id ends the current pullback and starts the new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.pipeline import CalciumPipeline, FinalFrame, FrameOutput, PullbackOutput
from engine.quantify import total_arc_deg
from engine.reliability import frame_flag
from engine.streaming import protocol as p
from engine.streaming.journal import JournalWriter, journal_path


PipelineFactory = Callable[[], CalciumPipeline]
Event = tuple[str, dict[str, Any]]


def final_payload(frame: FinalFrame) -> dict[str, Any]:
    """One final frame as published: index, position, arcs, total arc, calcified flag."""
    return {
        "frame": frame.index,
        "position_mm": round(frame.position_mm, 6),
        "arcs": p.arcs_payload(frame.arcs),
        "total_arc_deg": total_arc_deg(frame.calcium),
        "calcified": bool(frame.arcs),
    }


class _Pullback:
    """The pullback in progress on a stream."""

    def __init__(self, start: p.PullbackStart, pipeline: CalciumPipeline, journal: JournalWriter | None) -> None:
        self.start = start
        self.pipeline = pipeline
        self.journal = journal
        self.next_frame = 0
        self.last_prob: np.ndarray | None = None
        self.last_spread: np.ndarray | None = None
        self.filled: list[int] = []
        self.next_final = 0
        self.lesions_closed = 0
        self.calcified_final = 0
        self.max_final_arc = 0.0
        self.last_final_calcified = False

    def lesion_status(self) -> dict[str, Any]:
        """The running lesion summary, from the final frames so far."""
        return {
            "final_frames": self.next_final,
            "calcified_frames": self.calcified_final,
            "lesions_closed": self.lesions_closed,
            "max_arc_deg": self.max_final_arc,
            "in_calcium": self.last_final_calcified,
        }

    def account(self, finals: list[FinalFrame], closed: int) -> None:
        for frame in finals:
            self.next_final = frame.index + 1
            arc = max((a.extent_deg for a in frame.arcs), default=0.0)
            self.max_final_arc = max(self.max_final_arc, arc)
            self.calcified_final += bool(frame.arcs)
            self.last_final_calcified = bool(frame.arcs)
        self.lesions_closed += closed


class StreamSession:
    """Pullbacks of one stream id, one at a time; every method returns the events to publish."""

    def __init__(self, stream: str, pipeline_factory: PipelineFactory, journal_dir: Path | None, send_rows: bool = True) -> None:
        self.stream = stream
        self.pipeline_factory = pipeline_factory
        self.journal_dir = journal_dir
        self.send_rows = send_rows
        self.expected_seq: int | None = None
        self.current: _Pullback | None = None
        self.ended: str | None = None  # the last pullback that ended, whose late frames are refused

    # ------------------------------------------------------------------ control

    def start(self, start: p.PullbackStart, received_wall_ns: int) -> list[Event]:
        """Begin a pullback (ending the current one, if any, once the new one is known to be valid)."""
        if self.current is not None and self.current.start.pullback == start.pullback:
            raise p.ProtocolError(f"pullback {start.pullback!r} is already in progress", source=f"stream {self.stream!r}")
        pipeline = self.pipeline_factory()
        spec = pipeline.runtime.spec
        if start.layout == "polar" and start.shape != (spec.n_depth, spec.n_alines):
            raise p.ProtocolError(
                f"polar frames must be {spec.n_depth} x {spec.n_alines} (depth x A-lines) for this model, got {list(start.shape)}",
                source=f"stream {self.stream!r}",
            )
        try:
            pipeline.begin(start.calibration, start.shape if start.layout == "cartesian" else None)
        except InputError as error:
            raise p.ProtocolError(f"cannot start pullback {start.pullback!r}: {error}", source=f"stream {self.stream!r}") from None
        events = self.close(reason=f"superseded by pullback {start.pullback!r}") if self.current else []
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
            journal = JournalWriter(journal_path(self.journal_dir, self.stream, start.pullback), meta)
        self.current = _Pullback(start, pipeline, journal)
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

    def end(self, end: p.PullbackEnd) -> list[Event]:
        """End of pullback: flush the final frames and publish the summary."""
        if self.current is None or self.current.start.pullback != end.pullback:
            raise p.ProtocolError(f"end of pullback {end.pullback!r}, which is not in progress", source=f"stream {self.stream!r}")
        expected = end.n_frames
        events: list[Event] = []
        if expected is not None and expected > self.current.next_frame:
            events.extend(self._fill(self.current, expected, reason="frames missing at end of pullback"))
        return [*events, *self.close(reason=None)]

    def close(self, reason: str | None) -> list[Event]:
        """Finish the current pullback (normally when `reason` is None, else interrupted)."""
        pullback, self.current = self.current, None
        if pullback is None:
            return []
        self.ended = pullback.start.pullback
        if pullback.next_frame == 0:
            if pullback.journal:
                pullback.journal.end({"n_frames": 0, "interrupted": reason})
            return [("summary", {"pullback": pullback.start.pullback, "n_frames": 0, "complete": reason is None, "reason": reason})]
        output: PullbackOutput = pullback.pipeline.end()
        pullback.account(output.final, 0)
        summary = output.summary.to_dict()
        body = {
            "pullback": pullback.start.pullback,
            "n_frames": pullback.next_frame,
            "filled_frames": pullback.filled,
            "complete": reason is None,
            "reason": reason,
            "summary": summary,
        }
        if pullback.journal:
            pullback.journal.end({**summary, "filled_frames": pullback.filled, "interrupted": reason})
        final = {"pullback": pullback.start.pullback, "final": [final_payload(f) for f in output.final], "lesion": pullback.lesion_status()}
        return [("final", final), ("summary", body)]

    # ------------------------------------------------------------------ frames

    def frames(self, items: list[tuple[p.FrameMessage, int, int]], started_ns: int) -> list[Event]:
        """Process frames (with their arrival times, ns) in order; returns results and notices.

        `started_ns`: when the worker took these frames off the queue (monotonic ns).
        """
        events: list[Event] = []
        batch: list[tuple[p.FrameMessage, int, int]] = []
        for item in items:
            message = item[0]
            events.extend(self._sequence(message))
            problem = self._admit(message, events)
            if problem:
                events.append(("error", {"pullback": message.pullback, "seq": message.seq, "frame": message.frame_index, "reason": problem}))
                continue
            assert self.current is not None
            if message.frame_index != self.current.next_frame + len(batch):
                events.extend(self._run(batch, started_ns))
                batch = []
                events.extend(self._fill(self.current, message.frame_index, reason="sequence gap"))
            batch.append(item)
        events.extend(self._run(batch, started_ns))
        return events

    def _sequence(self, message: p.FrameMessage) -> list[Event]:
        events: list[Event] = []
        if self.expected_seq is not None and message.seq != self.expected_seq:
            events.append(("gap", {"pullback": message.pullback, "expected_seq": self.expected_seq, "seq": message.seq}))
        self.expected_seq = message.seq + 1
        return events

    def _admit(self, message: p.FrameMessage, events: list[Event]) -> str | None:
        """Why this frame cannot be processed, or None; starts a pullback implied by a new id."""
        current = self.current
        if current is None and message.pullback == self.ended:
            return f"pullback {message.pullback!r} has already ended"
        if current is None or current.start.pullback != message.pullback:
            try:
                events.extend(self.start(message.start, time.time_ns()))
            except p.ProtocolError as error:
                return str(error)
            current = self.current
            assert current is not None
        start = current.start
        if (message.layout, message.start.shape, str(message.pixels.dtype)) != (start.layout, start.shape, start.dtype):
            return f"frame is {message.layout} {list(message.pixels.shape)} {message.pixels.dtype}, the pullback is {start.layout} {list(start.shape)} {start.dtype}"
        if message.calibration != start.calibration:
            return "frame calibration differs from the pullback's (start a new pullback to change it)"
        if message.frame_index < current.next_frame:
            return f"frame {message.frame_index} is out of order (next expected {current.next_frame})"
        return None

    def _run(self, batch: list[tuple[p.FrameMessage, int, int]], started_ns: int) -> list[Event]:
        if not batch:
            return []
        current = self.current
        assert current is not None
        # One frame (the usual case when keeping up) goes in as a view of the received buffer.
        pixels = batch[0][0].pixels[None] if len(batch) == 1 else np.stack([message.pixels for message, _, _ in batch])
        outputs = current.pipeline.process(pixels, current.next_frame)
        inferred_ns = time.monotonic_ns()
        current.next_frame += len(outputs)
        self._journal_rows(current, outputs)
        events = []
        for (message, received_ns, received_wall_ns), out in zip(batch, outputs, strict=True):
            current.account(out.final, len(out.closed_lesions))
            timing = {"received_ns": received_ns, "received_wall_ns": received_wall_ns, "started_ns": started_ns, "inferred_ns": inferred_ns}
            events.append(("result", self._result(current, out, message.seq, message.t_acq, timing)))
        return events

    def _fill(self, current: _Pullback, up_to: int, reason: str) -> list[Event]:
        """Frames `next_frame .. up_to - 1` were never processed: hold the last probabilities."""
        missing = list(range(current.next_frame, up_to))
        if not missing:
            return []
        n_alines = current.pipeline.runtime.spec.n_alines
        prob = current.last_prob if current.last_prob is not None else np.zeros(n_alines, dtype=np.float32)
        spread = current.last_spread if current.last_spread is not None else np.zeros(n_alines, dtype=np.float32)
        probs, spreads = np.tile(prob, (len(missing), 1)), np.tile(spread, (len(missing), 1))
        outputs = current.pipeline.process_probabilities(probs, spreads, missing[0])
        current.next_frame = up_to
        current.filled.extend(missing)
        if current.journal:
            current.journal.rows(missing, [o.position_mm for o in outputs], probs, spreads, filled=reason)
        finals: list[dict[str, Any]] = []
        for out in outputs:
            current.account(out.final, len(out.closed_lesions))
            finals.extend(final_payload(f) for f in out.final)
        body = {"pullback": current.start.pullback, "frames": missing, "reason": reason, "filled": "held last probabilities", "final": finals}
        return [("gap", body)]

    def _journal_rows(self, current: _Pullback, outputs: list[FrameOutput]) -> None:
        current.last_prob, current.last_spread = outputs[-1].probability, outputs[-1].spread
        if current.journal:
            current.journal.rows(
                [o.index for o in outputs],
                [o.position_mm for o in outputs],
                np.stack([o.probability for o in outputs]),
                np.stack([o.spread for o in outputs]),
            )

    def _result(self, current: _Pullback, out: FrameOutput, seq: int, t_acq: float, timing: dict[str, int]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "pullback": current.start.pullback,
            "seq": seq,
            "frame": out.index,
            "t_acq": t_acq,
            "position_mm": round(out.position_mm, 6),
            "provisional": {
                "arcs": p.arcs_payload(out.provisional_arcs),
                "total_arc_deg": total_arc_deg(out.provisional),
                "calcified": bool(out.provisional_arcs),
            },
            "final": [final_payload(f) for f in out.final],
            "uncertainty": {"spread_mean": float(out.spread.mean()), "spread_max": float(out.spread.max()),
                            "flagged": frame_flag(getattr(current.pipeline.runtime, "reliability", None), out.spread)},
            "lesion": current.lesion_status(),
            "closed_lesions": [lesion.to_dict() for lesion in out.closed_lesions],
            "t": timing,
        }
        if self.send_rows:
            body["prob_u8"] = p.quantize_unit(out.probability)
            body["spread_u8"] = p.quantize_unit(out.spread)
        return body
