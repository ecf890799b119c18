"""Every open stream of the live engine: routing, ownership, limits, lifetime (no sockets, one thread).

`StreamTable.handle` takes each inbound message in arrival order and returns the events to
publish as `(kind, stream, body)`. It owns the per-stream `StreamSession`s: one is created when a
pullback opens (a `start`, or the first frame of a new pullback id) and freed when that pullback
ends (its `end`, the idle timeout, engine shutdown, or an internal failure). What is remembered of
an ended pullback is its id, in a bounded list, so that its late frames are refused instead of
reopening it. With authentication, a stream belongs to the client key that opened it until its
pullback ends; messages from any other key are refused and never alter it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.streaming import protocol as p
from engine.streaming.inbound import Received
from engine.streaming.session import Arrival, Event, PipelineFactory, Refused, StreamSession, drop_body, error_event

log = logging.getLogger(__name__)

Published = tuple[str, str | None, dict[str, Any]]


@dataclass(frozen=True)
class StreamLimits:
    """Per-engine limits on streams (docs/protocol.md, 'Limits'); the CLI flags default to these."""

    max_streams: int = 32  # pullbacks open at once
    max_gap: int = 300  # frames filled for one message (10 s at 30 frames/s)
    idle_timeout_s: float = 60.0  # an open pullback with no message for this long is closed
    remembered_ids: int = 4096  # ended (stream, pullback) ids kept to refuse their late frames


class _BoundedSet:
    """Insertion-ordered keys, the oldest forgotten beyond `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[Any, int] = OrderedDict()

    def add(self, key: Any, value: int = 0) -> None:
        self._keys[key] = value
        self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def pop(self, key: Any) -> int:
        return self._keys.pop(key, 0)

    def __contains__(self, key: Any) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


class StreamTable:
    """Open streams by id; `handle` routes one message, `flush` infers what is pending."""

    def __init__(
        self,
        pipeline_factory: PipelineFactory,
        limits: StreamLimits,
        *,
        journal_dir: Path | None = None,
        journal_fsync_s: float | None = 1.0,
        send_rows: bool = True,
    ) -> None:
        self.pipeline_factory = pipeline_factory
        self.limits = limits
        self.journal_dir = journal_dir
        self.journal_fsync_s = journal_fsync_s
        self.send_rows = send_rows
        self.sessions: dict[str, StreamSession] = {}
        self._ended = _BoundedSet(limits.remembered_ids)  # (stream, pullback) ids that ended
        self._early_drops = _BoundedSet(limits.remembered_ids)  # (stream, pullback) -> frames dropped before it opened

    def streams(self) -> list[str]:
        """Ids of the streams with a pullback open."""
        return sorted(self.sessions)

    # ------------------------------------------------------------------ routing

    def handle(self, item: Received, started_ns: int) -> list[Published]:
        """One inbound message (or drop marker), in arrival order -> the events due now."""
        message = item.message
        stream = message.stream
        session = self.sessions.get(stream)
        if session is not None and session.owner != item.user:
            if item.dropped is not None:
                return [("drop", stream, drop_body(message, item.dropped))]  # type: ignore[arg-type]
            reason = f"stream {stream!r} is open by another client key; this message is refused"
            return self._tag(stream, [error_event("not_owner", reason, message)])
        if session is not None:
            session.last_seen = time.monotonic()
        try:
            events = self._route(session, item, started_ns)
        except Refused as refusal:  # the stream's earlier frames come out first: events stay in arrival order
            pending = session.flush(started_ns) if session is not None and session.current is not None else []
            events = [*pending, error_event(refusal.code, str(refusal), message)]
        except Exception as error:  # a bug in one stream's processing: the engine outlives it
            events = self._fail(stream, message, error)
        published = self._tag(stream, events)
        current = self.sessions.get(stream)
        if current is not None and current.current is None:  # its pullback ended: free the stream
            del self.sessions[stream]
        return published

    def _route(self, session: StreamSession | None, item: Received, started_ns: int) -> list[Event]:
        message = item.message
        if item.dropped is not None:
            assert isinstance(message, p.FrameMessage)
            if session is not None and session.current is not None and session.current.pullback == message.pullback:
                return session.drop(message, item.dropped, started_ns)
            if (message.stream, message.pullback) not in self._ended:
                key = (message.stream, message.pullback)
                self._early_drops.add(key, self._early_drops.pop(key) + 1)
            return [("drop", drop_body(message, item.dropped))]
        if isinstance(message, p.PullbackStart):
            return self._open(session, message, item, started_ns)
        if isinstance(message, p.PullbackEnd):
            if session is None or session.current is None or session.current.pullback != message.pullback:
                ended = (message.stream, message.pullback) in self._ended
                raise Refused(
                    "ended" if ended else "not_in_progress",
                    f"end of pullback {message.pullback!r}, "
                    f"which {'has already ended' if ended else 'is not in progress'}",
                )
            events = session.end(message, started_ns)
            self._ended.add((message.stream, message.pullback))
            return events
        assert isinstance(message, p.FrameMessage)
        events = []
        if session is None or session.current is None or session.current.pullback != message.pullback:
            if message.frame_index > self.limits.max_gap:
                raise Refused(
                    "jump",
                    f"frame {message.frame_index} would open pullback {message.pullback!r} with "
                    f"{message.frame_index} frames missing; at most {self.limits.max_gap} are filled (--max-gap)",
                )
            events = self._open(session, message.start, item, started_ns)
            session = self.sessions[message.stream]
        arrival = Arrival(message, item.received_ns, item.received_wall_ns)
        return [*events, *session.frame(arrival, started_ns)]

    def _open(
        self, session: StreamSession | None, start: p.PullbackStart, item: Received, started_ns: int
    ) -> list[Event]:
        """Open `start` on its stream (a new session, or superseding the stream's current pullback)."""
        key = (start.stream, start.pullback)
        if key in self._ended:
            raise Refused("ended", f"pullback {start.pullback!r} has already ended (a pullback id is not reused)")
        if session is None:
            if len(self.sessions) >= self.limits.max_streams:
                raise Refused(
                    "stream_limit",
                    f"{len(self.sessions)} streams are open, the most this engine allows "
                    f"(--max-streams {self.limits.max_streams}); end one first",
                )
            session = StreamSession(
                start.stream,
                self.pipeline_factory,
                journal_dir=self.journal_dir,
                journal_fsync_s=self.journal_fsync_s,
                max_gap=self.limits.max_gap,
                owner=item.user,
                send_rows=self.send_rows,
            )
        superseded = session.current.pullback if session.current is not None else None
        events = session.open(start, item.received_wall_ns, started_ns, dropped=self._early_drops.pop(key))
        self.sessions[start.stream] = session
        if superseded is not None:
            self._ended.add((start.stream, superseded))
        return events

    def _fail(self, stream: str, message: p.Inbound, error: Exception) -> list[Event]:
        """A stream's processing failed (a bug): log it, abandon its pullback, report, go on."""
        log.exception("stream %r: internal error; its pullback is abandoned", stream)
        session = self.sessions.pop(stream, None)
        if session is not None:
            if session.current is not None:
                self._ended.add((stream, session.current.pullback))
            session.abandon()
        return [
            error_event("internal", f"internal error, pullback abandoned ({type(error).__name__}: {error})", message)
        ]

    @staticmethod
    def _tag(stream: str, events: list[Event]) -> list[Published]:
        return [(kind, stream, body) for kind, body in events]

    # ------------------------------------------------------------------ batches and lifetime

    def flush(self, started_ns: int) -> list[Published]:
        """Infer every stream's pending frames (one batch per stream)."""
        published: list[Published] = []
        for stream, session in list(self.sessions.items()):
            if session.pending_frames:
                try:
                    published.extend(self._tag(stream, session.flush(started_ns)))
                except Exception as error:
                    message = (
                        session.current.pending[0].message if session.current and session.current.pending else None
                    )
                    published.extend(self._tag(stream, self._fail(stream, message, error)))  # type: ignore[arg-type]
        return published

    def sync_journals(self) -> None:
        """Hand every open journal's buffered records to the OS (before their results are published)."""
        for session in self.sessions.values():
            if session.current is not None and session.current.journal is not None:
                session.current.journal.flush()

    def expire_idle(self, now: float, started_ns: int) -> list[Published]:
        """Close pullbacks that received nothing for `idle_timeout_s` (reason "idle")."""
        idle = [s for s, session in self.sessions.items() if now - session.last_seen > self.limits.idle_timeout_s]
        return [event for stream in idle for event in self.close(stream, "idle", started_ns)]

    def close_all(self, reason: str, started_ns: int) -> list[Published]:
        return [event for stream in list(self.sessions) for event in self.close(stream, reason, started_ns)]

    def close(self, stream: str, reason: str, started_ns: int) -> list[Published]:
        """End `stream`'s pullback as interrupted (`reason`) and free the stream."""
        session = self.sessions.pop(stream)
        if session.current is not None:
            self._ended.add((stream, session.current.pullback))
        try:
            return self._tag(stream, session.close(reason, started_ns))
        except Exception as error:
            self.sessions[stream] = session
            return self._tag(
                stream,
                self._fail(stream, p.PullbackEnd(stream, session.current.pullback if session.current else "-"), error),
            )
