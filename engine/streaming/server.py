"""The live engine's sockets and threads: receive, queue, micro-batch, process, publish.

A receiver thread owns the inbound PULL socket: it decodes and validates each message
(engine.streaming.protocol) and puts it on a bounded queue, stamped with its arrival time. When
the queue is full the frame is dropped and a drop notice is queued instead: every valid frame
yields a result or an explicit drop notice. The worker (the thread that calls `run`) owns the
PUB socket: it takes what is queued (up to `max_batch` frames at once, so that it catches up
when frames come faster than one-at-a-time inference), hands them to one `StreamSession` per
stream id, and publishes the events. Malformed messages become `error` events and a log line.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from engine.errors import InputError
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.streaming import protocol as p
from engine.streaming.preview import PreviewEncoder, PreviewSettings
from engine.streaming.session import PipelineFactory, StreamSession

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = p.MAX_FRAME_BYTES + p.MAX_HEADER_BYTES + 1024


@dataclass(frozen=True)
class ServerConfig:
    """Addresses and limits of the engine (docs/protocol.md, 'Sockets')."""

    frames_address: str = "tcp://127.0.0.1:5555"
    results_address: str = "tcp://127.0.0.1:5556"
    frames_connect: bool = False  # connect the PULL socket instead of binding it
    journal_dir: Path | None = None
    max_batch: int = 8
    queue_size: int = 256
    heartbeat_s: float = 1.0
    send_rows: bool = True  # per-A-line probability and spread as uint8 bytes in each result
    max_message_bytes: int = MAX_MESSAGE_BYTES
    preview: PreviewSettings | None = None  # JPEG previews for the web view (engine/streaming/preview.py)


@dataclass
class _Received:
    """A decoded inbound message and when it arrived (monotonic and wall clock, ns)."""

    message: p.Inbound
    received_ns: int
    received_wall_ns: int


class _Stats:
    """Counters shared by the two threads (the GIL makes these single updates atomic enough)."""

    def __init__(self) -> None:
        self.frames_received = 0
        self.frames_done = 0
        self.frames_dropped = 0
        self.rejected = 0
        self.started = time.monotonic()
        self.recent: deque[float] = deque(maxlen=4096)  # completion times of recent frames

    def fps(self) -> float:
        now = time.monotonic()
        recent = [t for t in self.recent if now - t <= 2.0]
        return len(recent) / 2.0


class StreamingServer:
    """`bind()` then `run()` (blocks until `stop()`); `endpoints` says where it listens."""

    def __init__(
        self,
        config: ServerConfig,
        pipeline_factory: PipelineFactory,
        status: dict[str, Any],
        context: zmq.Context | None = None,
    ) -> None:
        self.config = config
        self.pipeline_factory = pipeline_factory
        self.status = status  # static heartbeat fields: backend, model
        self.context = context or zmq.Context.instance()
        self.stats = _Stats()
        self._queue: queue.Queue[_Received] = queue.Queue(maxsize=config.queue_size)
        self._notices: deque[tuple[str, str | None, dict[str, Any]]] = deque()
        self._stop = threading.Event()
        self._receiver_done = threading.Event()
        self._sessions: dict[str, StreamSession] = {}
        self._pull: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self.endpoints: tuple[str, str] = ("", "")
        self.preview = PreviewEncoder(config.preview, self._notices.append) if config.preview else None
        # called by the worker with each event it published (metrics)
        self.observers: list[Callable[[str, str | None, dict[str, Any]], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def bind(self) -> tuple[str, str]:
        """Open both sockets; returns the actual (frames, results) endpoints (ports resolved)."""
        pull = self.context.socket(zmq.PULL)
        pull.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        pull.setsockopt(zmq.RCVHWM, 1000)
        pull.setsockopt(zmq.LINGER, 0)
        pub = self.context.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 100_000)
        pub.setsockopt(zmq.LINGER, 1000)
        try:
            if self.config.frames_connect:
                pull.connect(self.config.frames_address)
                frames_endpoint = self.config.frames_address
            else:
                pull.bind(self.config.frames_address)
                frames_endpoint = pull.getsockopt_string(zmq.LAST_ENDPOINT)
            pub.bind(self.config.results_address)
        except zmq.ZMQError as error:
            pull.close()
            pub.close()
            raise InputError(f"cannot open sockets ({error})", source=f"{self.config.frames_address} / {self.config.results_address}") from None
        self._pull, self._pub = pull, pub
        self.endpoints = (frames_endpoint, pub.getsockopt_string(zmq.LAST_ENDPOINT))
        return self.endpoints

    def stop(self) -> None:
        """Ask the engine to finish: stop receiving, process what is queued, end open pullbacks."""
        self._stop.set()

    def run(self) -> None:
        """Serve until `stop()`; then flush queued frames and open pullbacks and close the sockets."""
        if self._pull is None:
            self.bind()
        receiver = threading.Thread(target=self._receive_loop, name="ivuscal-receiver", daemon=True)
        receiver.start()
        if self.preview is not None:
            self.preview.start()
        next_heartbeat = time.monotonic()
        try:
            while not (self._receiver_done.is_set() and self._queue.empty()):
                batch = self._take_batch(timeout=min(self.config.heartbeat_s, 0.1))
                self._publish_notices()
                self._handle(batch)
                self._publish_notices()
                if time.monotonic() >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = time.monotonic() + self.config.heartbeat_s
            self._publish_notices()
            for stream in list(self._sessions):
                self._publish_all(self._sessions.pop(stream).close(reason="engine shutdown"), stream=stream)
            self._heartbeat()
        finally:
            self._stop.set()
            if self.preview is not None:
                self.preview.stop()
            receiver.join(timeout=5)
            assert self._pub is not None
            self._pub.close()

    # ------------------------------------------------------------------ receiver thread

    def _receive_loop(self) -> None:
        assert self._pull is not None
        poller = zmq.Poller()
        poller.register(self._pull, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(50):
                    continue
                parts = self._pull.recv_multipart(copy=False)
                self._accept(parts, time.monotonic_ns(), time.time_ns())
        finally:
            self._pull.close()
            self._receiver_done.set()

    def _accept(self, parts: list[Any], received_ns: int, wall_ns: int) -> None:
        try:
            message = p.decode_inbound(parts)
        except Exception as error:  # ProtocolError, or a decoder bug: either way the receiver carries on
            self.stats.rejected += 1
            if isinstance(error, p.ProtocolError):
                log.warning("rejected message: %s", error)
            else:
                log.exception("rejected message: decoder failure")
            reason = str(error) if isinstance(error, p.ProtocolError) else f"undecodable message ({type(error).__name__})"
            self._notices.append(("error", p.peek_stream(parts), {"reason": reason, "received_wall_ns": wall_ns}))
            return
        if isinstance(message, p.FrameMessage):
            self.stats.frames_received += 1
        item = _Received(message, received_ns, wall_ns)
        if isinstance(message, p.FrameMessage):
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.stats.frames_dropped += 1
                self._notices.append(("drop", message.stream, _drop_body(message, "engine queue full")))
        else:
            self._queue.put(item)  # control messages are never dropped: wait for room

    # ------------------------------------------------------------------ worker

    def _take_batch(self, timeout: float) -> list[_Received]:
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < self.config.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[_Received]) -> None:
        """Process in arrival order; consecutive frames of one stream go through as one batch."""
        run: list[_Received] = []
        for item in batch:
            message = item.message
            if isinstance(message, p.FrameMessage) and (not run or run[0].message.stream == message.stream):
                run.append(item)
                continue
            self._process_frames(run)
            run = [item] if isinstance(message, p.FrameMessage) else []
            if not isinstance(message, p.FrameMessage):
                self._control(item)
        self._process_frames(run)

    def _session(self, stream: str) -> StreamSession:
        if stream not in self._sessions:
            self._sessions[stream] = StreamSession(stream, self.pipeline_factory, self.config.journal_dir, self.config.send_rows)
        return self._sessions[stream]

    def _control(self, item: _Received) -> None:
        message = item.message
        session = self._session(message.stream)
        try:
            if isinstance(message, p.PullbackStart):
                events = session.start(message, item.received_wall_ns)
            else:
                events = session.end(message)
        except InputError as error:
            events = [("error", {"reason": str(error), "received_wall_ns": item.received_wall_ns})]
            log.warning("rejected control message: %s", error)
        except Exception as error:  # the engine outlives any one stream's failure
            events = self._fail_stream(message.stream, [item], error)
        self._publish_all(events, stream=message.stream)

    def _fail_stream(self, stream: str, items: list[_Received], error: Exception) -> list[tuple[str, dict[str, Any]]]:
        """A stream's pullback failed: report it for each message, drop the stream's state, go on."""
        if isinstance(error, InputError):
            log.warning("stream %r: %s", stream, error)
        else:
            log.exception("stream %r: internal error; its pullback is abandoned", stream)
        session = self._sessions.pop(stream, None)
        if session is not None and session.current is not None and session.current.journal is not None:
            session.current.journal.close()
        reason = f"{type(error).__name__}: {error}" if not isinstance(error, InputError) else str(error)
        return [
            ("error", {"pullback": getattr(i.message, "pullback", None), "frame": getattr(i.message, "frame_index", None), "reason": reason})
            for i in items
        ]

    def _process_frames(self, run: list[_Received]) -> None:
        if not run:
            return
        stream = run[0].message.stream
        started_ns = time.monotonic_ns()
        try:
            events = self._session(stream).frames([(r.message, r.received_ns, r.received_wall_ns) for r in run], started_ns)
        except Exception as error:  # the engine outlives any one stream's failure
            events = self._fail_stream(stream, run, error)
        now = time.monotonic()
        self.stats.frames_done += len(run)
        self.stats.recent.extend([now] * len(run))
        self._publish_all(events, stream=stream)
        if self.preview is not None:
            self.preview.offer(stream, run[-1].message)

    def _publish_all(self, events: list[tuple[str, dict[str, Any]]], stream: str | None = None) -> None:
        for kind, body in events:
            self._publish(kind, body.pop("stream", stream), body)

    def _publish(self, kind: str, stream: str | None, body: dict[str, Any]) -> None:
        assert self._pub is not None
        timing = body.get("t")
        if isinstance(timing, dict):
            timing["published_ns"] = time.monotonic_ns()
            timing["published_wall_ns"] = time.time_ns()
        self._pub.send_multipart(p.encode_event(kind, stream, body))
        for observe in self.observers:
            observe(kind, stream, body)

    def gauges(self) -> dict[str, int]:
        """Live values for metrics (any thread): frames received so far, queue depth, open streams."""
        received, depth, streams = self.stats.frames_received, self._queue.qsize(), len(self._sessions)
        return {"frames_received": received, "queue_depth": depth, "open_streams": streams}

    def _publish_notices(self) -> None:
        while self._notices:
            kind, stream, body = self._notices.popleft()
            self._publish(kind, stream, body)

    def _heartbeat(self) -> None:
        body = {
            **self.status,
            "queue_depth": self._queue.qsize(),
            "frames_received": self.stats.frames_received,
            "frames_done": self.stats.frames_done,
            "frames_dropped": self.stats.frames_dropped,
            "messages_rejected": self.stats.rejected,
            "frames_per_s": self.stats.fps(),
            "streams": sorted(self._sessions),
            "uptime_s": round(time.monotonic() - self.stats.started, 3),
            "wall_ns": time.time_ns(),
        }
        self._publish("heartbeat", None, body)


def _drop_body(message: p.FrameMessage, reason: str) -> dict[str, Any]:
    return {"pullback": message.pullback, "seq": message.seq, "frame": message.frame_index, "reason": reason}


def create_server(
    config: ServerConfig,
    backend: str = "auto",
    model: Path | str | None = None,
    settings: PipelineSettings | None = None,
    context: zmq.Context | None = None,
    threads: int | None = None,
) -> StreamingServer:
    """The engine on one shared runtime (one ensemble), one pipeline per stream."""
    from engine.runtimes import create_runtime  # noqa: PLC0415 - loads torch; keep `import` light

    runtime = create_runtime(backend=backend, model=model, threads=threads)
    settings = settings or PipelineSettings()
    status = {"backend": runtime.describe().get("backend", backend), "model": runtime.model_id}
    return StreamingServer(config, lambda: CalciumPipeline(runtime, settings), status, context)


def run_in_thread(server: StreamingServer) -> tuple[threading.Thread, Callable[[], None]]:
    """Start `server.run` in a thread (binding first); returns the thread and a stop-and-join callable."""
    if server._pull is None:
        server.bind()
    thread = threading.Thread(target=server.run, name="ivuscal-engine", daemon=True)
    thread.start()

    def stop_and_join() -> None:
        server.stop()
        thread.join(timeout=30)

    return thread, stop_and_join
