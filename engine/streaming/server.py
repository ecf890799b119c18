"""The live engine's sockets and threads: receive, queue, micro-batch, process, publish.

Threads and what each owns:
- the receiver thread owns the inbound PULL socket: it decodes and validates each message
  (engine.streaming.protocol), stamps its arrival time and sender key, and puts it on the bounded
  `InboundQueue`; a frame that finds the queue full becomes a drop marker in its place, so every
  valid frame yields a result, a fill or exactly one drop notice. On stop it drains what ZeroMQ
  already holds (within `shutdown_s`) before closing its socket.
- the worker (the thread that calls `run`) owns the PUB socket and every stream's state
  (`StreamTable`): it takes up to `max_batch` entries, routes each in arrival order, infers each
  stream's admitted frames as one batch, flushes the journals, then publishes the events.
- with `--auth`, the ZAP authenticator thread (engine.streaming.auth) checks every connection.

Hooks (for exporters and previews kept in their own modules): `publish_hooks` are called by the
worker after each event is published `(kind, stream, body)`; `frame_hooks` with each frame message
the worker takes off the queue; `stats.snapshot()` may be read from any thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import zmq

from engine.errors import InputError
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.streaming import protocol as p
from engine.streaming.auth import CurveServer, check_exposure, ipc_path
from engine.streaming.inbound import InboundQueue, Item, Notice, Received
from engine.streaming.journal import prune_journals
from engine.streaming.preview import PreviewEncoder, PreviewSettings
from engine.streaming.session import PipelineFactory
from engine.streaming.stats import EngineStats
from engine.streaming.streams import Published, StreamLimits, StreamTable

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_LIMITS = StreamLimits()


@dataclass(frozen=True)
class ServerConfig:
    """Addresses, limits and policies of the engine (docs/protocol.md, 'Sockets', 'Limits', 'Security')."""

    frames_address: str = "tcp://127.0.0.1:5555"
    results_address: str = "tcp://127.0.0.1:5556"
    frames_connect: bool = False  # connect the PULL socket instead of binding it
    journal_dir: Path | None = None
    journal_fsync_s: float | None = 1.0  # most seconds between fsyncs of an open journal (None: at pullback end only)
    journal_retention_days: float | None = None  # delete journals older than this (None: keep all)
    max_batch: int = 8
    queue_size: int = 256  # frames waiting for the worker; more are dropped with a notice
    control_slots: int = 1024  # start/end/notices waiting besides the frames; beyond, the receiver waits
    heartbeat_s: float = 1.0
    send_rows: bool = True  # per-A-line probability and spread as uint8 bytes in each result
    max_frame_bytes: int = 4 * MIB  # pixels of one frame (2048 x 2048 uint8, 1024 x 1024 float32)
    receive_budget_bytes: int = 256 * MIB  # ZeroMQ's inbound buffer per connected sender: sets the RCVHWM
    send_hwm: int = 100_000  # events held for a slow subscriber before ZeroMQ drops them
    publish_linger_ms: int = 1000  # time to deliver the last events at shutdown
    max_streams: int = _LIMITS.max_streams
    max_gap: int = _LIMITS.max_gap
    idle_timeout_s: float = _LIMITS.idle_timeout_s
    shutdown_s: float = 10.0  # on stop: drain, then process what is queued; past it, drop notices
    auth_dir: Path | None = None  # allowed client public keys (*.key); None: no authentication
    server_key: Path | None = None  # the engine's secret certificate (.key_secret), with auth_dir
    insecure: bool = False  # allow a non-loopback endpoint without authentication
    preview: PreviewSettings | None = None  # JPEG previews for the web view (engine/streaming/preview.py)

    @property
    def max_message_bytes(self) -> int:
        """ZMQ_MAXMSGSIZE: the largest frame plus its header (larger messages are discarded by ZeroMQ)."""
        return self.max_frame_bytes + p.MAX_HEADER_BYTES + 1024

    @property
    def receive_hwm(self) -> int:
        """ZMQ_RCVHWM in messages, so that ZeroMQ holds at most `receive_budget_bytes` per sender."""
        return max(1, self.receive_budget_bytes // self.max_message_bytes)

    @property
    def limits(self) -> StreamLimits:
        return StreamLimits(max_streams=self.max_streams, max_gap=self.max_gap, idle_timeout_s=self.idle_timeout_s)


class StreamingServer:
    """`bind()` then `run()` (blocks until `stop()`); `close()` (or `with`) releases the sockets."""

    def __init__(
        self,
        config: ServerConfig,
        pipeline_factory: PipelineFactory,
        status: dict[str, Any],
        context: zmq.Context | None = None,
    ) -> None:
        self.config = config
        self.status = status  # static heartbeat fields: backend, model
        self.context = context or zmq.Context.instance()
        self._queue = InboundQueue(config.queue_size, config.queue_size + config.control_slots)
        self.stats = EngineStats(queue_depth=lambda: len(self._queue), open_streams=lambda: len(self.table.sessions))
        self.table = StreamTable(
            pipeline_factory,
            config.limits,
            journal_dir=config.journal_dir,
            journal_fsync_s=config.journal_fsync_s,
            send_rows=config.send_rows,
        )
        self.publish_hooks: list[Callable[[str, str | None, dict[str, Any]], None]] = []
        self.frame_hooks: list[Callable[[p.FrameMessage], None]] = []
        self._stop = threading.Event()
        self._stop_deadline = float("inf")
        self._receiver_done = threading.Event()
        self._pull: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._curve: CurveServer | None = None
        self._next_prune = 0.0
        self.endpoints: tuple[str, str] = ("", "")
        # previews encoded by the preview thread, published by the worker (latest-wins per stream upstream)
        self._previews: deque[Published] = deque(maxlen=256)
        self.preview = PreviewEncoder(config.preview, self._previews.append) if config.preview else None

    # ------------------------------------------------------------------ lifecycle

    def bind(self) -> tuple[str, str]:
        """Open both sockets; returns the actual (frames, results) endpoints (ports resolved).

        Raises InputError for an address that cannot be used or may not be used without --auth.
        """
        config = self.config
        authenticated = config.auth_dir is not None
        check_exposure([config.frames_address, config.results_address], authenticated, config.insecure)
        if config.auth_dir is not None:
            if config.server_key is None:
                raise InputError("--auth needs --server-key (the engine's .key_secret file from 'ivuscal keys')")
            self._curve = CurveServer(self.context, config.auth_dir, config.server_key)
            self._curve.start()  # before binding: a CURVE socket without an authenticator accepts any key
        pull = self.context.socket(zmq.PULL)
        pull.setsockopt(zmq.MAXMSGSIZE, config.max_message_bytes)
        pull.setsockopt(zmq.RCVHWM, config.receive_hwm)
        pull.setsockopt(zmq.LINGER, 0)
        pub = self.context.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, config.send_hwm)
        pub.setsockopt(zmq.LINGER, config.publish_linger_ms)
        if self._curve is not None:
            self._curve.apply(pull)
            self._curve.apply(pub)
        old_umask = os.umask(0o077)  # ipc:// socket files: owner only
        try:
            if config.frames_connect:
                pull.connect(config.frames_address)
                frames_endpoint = config.frames_address
            else:
                pull.bind(config.frames_address)
                frames_endpoint = pull.getsockopt_string(zmq.LAST_ENDPOINT)
            pub.bind(config.results_address)
        except zmq.ZMQError as error:
            pull.close()
            pub.close()
            self._stop_auth()
            raise InputError(
                f"cannot open sockets ({error})", source=f"{config.frames_address} / {config.results_address}"
            ) from None
        finally:
            os.umask(old_umask)
        self._pull, self._pub = pull, pub
        self.endpoints = (frames_endpoint, pub.getsockopt_string(zmq.LAST_ENDPOINT))
        for endpoint in self.endpoints:
            path = ipc_path(endpoint)
            if path is not None and path.exists():
                os.chmod(path, 0o600)
        return self.endpoints

    def stop(self) -> None:
        """Ask the engine to finish: drain what ZeroMQ holds, process what is queued, end open pullbacks."""
        self._stop_deadline = min(self._stop_deadline, time.monotonic() + self.config.shutdown_s)
        self._stop.set()

    def close(self) -> None:
        """Release the sockets and the authenticator (idempotent; `run` calls it when it returns)."""
        for socket in (self._pull, self._pub):
            if socket is not None and not socket.closed:
                socket.close()
        self._stop_auth()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stop_auth(self) -> None:
        if self._curve is not None:
            self._curve.stop()
            self._curve = None

    def run(self) -> None:
        """Serve until `stop()`; then flush what was received and end open pullbacks; close the sockets."""
        if self._pull is None:
            self.bind()
        receiver = threading.Thread(target=self._receive_loop, name="ivuscal-receiver", daemon=True)
        receiver.start()
        if self.preview is not None:
            self.preview.start()
        next_heartbeat = time.monotonic()
        try:
            while not (self._receiver_done.is_set() and len(self._queue) == 0):
                self._work(self._queue.take(self.config.max_batch, timeout_s=min(self.config.heartbeat_s, 0.1)))
                self._publish_previews()
                now = time.monotonic()
                self._publish_all(self.table.expire_idle(now, time.monotonic_ns()))
                self._prune_journals(now)
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = time.monotonic() + self.config.heartbeat_s
            self._publish_all(self.table.close_all("engine shutdown", time.monotonic_ns()))
            self._heartbeat()
        finally:
            self._stop.set()
            if self.preview is not None:
                self.preview.stop()
            receiver.join(timeout=self.config.shutdown_s + 5)
            if receiver.is_alive():
                log.error(
                    "receiver thread did not finish within %.0f s; closing its socket anyway",
                    self.config.shutdown_s + 5,
                )
            self.close()

    # ------------------------------------------------------------------ receiver thread

    def _receive_loop(self) -> None:
        assert self._pull is not None
        poller = zmq.Poller()
        poller.register(self._pull, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if poller.poll(50):
                    self._receive_one()
            # Drain: every message ZeroMQ already holds is queued (or becomes a drop notice).
            while time.monotonic() < self._stop_deadline and poller.poll(10):
                self._receive_one()
        except TimeoutError as error:  # the worker did not take entries before the shutdown deadline
            log.error("receiver stopped draining: %s", error)
        finally:
            self._pull.close()
            self._receiver_done.set()

    def _receive_one(self) -> None:
        assert self._pull is not None
        parts = self._pull.recv_multipart(copy=False)
        received_ns, wall_ns = time.monotonic_ns(), time.time_ns()
        user_id = parts[0].get("User-Id") if self._curve is not None else None
        user = user_id if isinstance(user_id, str) else None  # pyzmq types Frame.get as int | str; User-Id is str
        timeout = max(0.0, self._stop_deadline - time.monotonic()) if self._stop.is_set() else None
        try:
            message = p.decode_inbound(parts, max_frame_bytes=self.config.max_frame_bytes)
        except Exception as error:  # ProtocolError, or a decoder bug: either way the receiver carries on
            self.stats.rejected_receiver["malformed"] += 1
            if isinstance(error, p.ProtocolError):
                log.warning("rejected message: %s", error)
            else:
                log.exception("rejected message: decoder failure")
            reason = (
                str(error) if isinstance(error, p.ProtocolError) else f"undecodable message ({type(error).__name__})"
            )
            self._queue.put(
                Notice(
                    "error", p.peek_stream(parts), {"code": "malformed", "reason": reason, "received_wall_ns": wall_ns}
                ),
                timeout,
            )
            return
        item = Received(message, received_ns, wall_ns, user)
        if isinstance(message, p.FrameMessage):
            self.stats.frames_received += 1
            if self._queue.put_frame(item, timeout) is not None:
                self.stats.frames_dropped_queue += 1
        else:
            self._queue.put(item, timeout)  # control messages are never dropped: the receiver waits for room

    # ------------------------------------------------------------------ worker

    def _work(self, batch: list[Item]) -> None:
        """Route a batch in arrival order, infer per stream, flush journals, then publish."""
        if not batch:
            return
        started_ns = time.monotonic_ns()
        past_deadline = self._stop.is_set() and time.monotonic() > self._stop_deadline
        events: list[Published] = []
        for item in batch:
            if isinstance(item, Notice):
                events.append((item.kind, item.stream, item.body))
                continue
            message = item.message
            if isinstance(message, p.FrameMessage) and item.dropped is None:
                if past_deadline:
                    item = item.as_dropped("engine shutdown deadline")
                    self.stats.frames_dropped_shutdown += 1
                else:
                    for hook in self.frame_hooks:
                        hook(message)
            events.extend(self.table.handle(item, started_ns))
        events.extend(self.table.flush(started_ns))
        self.table.sync_journals()  # every frame published below is on its way to disk
        self._publish_all(events)
        if self.preview is not None:
            self._offer_previews(batch)

    def _publish_all(self, events: list[Published]) -> None:
        for kind, stream, body in events:
            self.publish(kind, stream, body)

    def publish(self, kind: str, stream: str | None, body: dict[str, Any]) -> None:
        """Send one event (worker thread only), count it, and hand it to the publish hooks."""
        assert self._pub is not None
        timing = body.get("t")
        if isinstance(timing, dict):
            timing["published_ns"] = time.monotonic_ns()
            timing["published_wall_ns"] = time.time_ns()
            self.stats.result_published(timing["published_ns"] - timing["received_ns"])
        elif kind == "gap" and "frames" in body:
            self.stats.frames_filled += len(body["frames"])
        elif kind == "error" and body.get("code") != "malformed":  # malformed: counted by the receiver
            self.stats.rejected_worker[body.get("code", "other")] += 1
        self._pub.send_multipart(p.encode_event(kind, stream, body))
        for hook in self.publish_hooks:
            hook(kind, stream, body)

    def _offer_previews(self, batch: list[Item]) -> None:
        """Hand the newest admitted frame of each stream in `batch` to the preview encoder (latest wins)."""
        assert self.preview is not None
        newest: dict[str, p.FrameMessage] = {}
        for item in batch:
            if isinstance(item, Received) and isinstance(item.message, p.FrameMessage) and item.dropped is None:
                newest[item.message.stream] = item.message
        for stream, message in newest.items():
            self.preview.offer(stream, message)

    def _publish_previews(self) -> None:
        """Send the previews the encoder thread made since the last call (this thread owns the PUB socket)."""
        while self._previews:
            kind, stream, body = self._previews.popleft()
            self.publish(kind, stream, body)

    def _heartbeat(self) -> None:
        snapshot = self.stats.snapshot()
        body = {
            **self.status,
            **snapshot.to_dict(),
            "frames_done": snapshot.frames_processed,  # its version-1 name, kept for existing readers
            "streams": self.table.streams(),
            "wall_ns": time.time_ns(),
        }
        self.publish("heartbeat", None, body)

    def _prune_journals(self, now: float) -> None:
        days = self.config.journal_retention_days
        if days is None or self.config.journal_dir is None or now < self._next_prune:
            return
        self._next_prune = now + 3600.0
        if self.config.journal_dir.is_dir():
            prune_journals(self.config.journal_dir, days * 86400.0)


def create_server(
    config: ServerConfig,
    backend: str = "auto",
    model: Path | str | None = None,
    settings: PipelineSettings | None = None,
    context: zmq.Context | None = None,
    threads: int | None = None,
    device: str | None = None,
    precision: str | None = None,
) -> StreamingServer:
    """The engine on one shared runtime (one ensemble), one pipeline per stream."""
    from engine.runtimes import create_runtime  # loads torch; keep `import` light

    runtime = create_runtime(backend=backend, model=model, threads=threads, device=device, precision=precision)
    settings = settings or PipelineSettings()
    described = runtime.describe()
    status = {"backend": described.get("backend", backend), "model": runtime.model_id,
              **{k: described[k] for k in ("device", "precision", "auto") if described.get(k)}}
    return StreamingServer(config, lambda: CalciumPipeline(runtime, settings), status, context)


def run_in_thread(server: StreamingServer) -> tuple[threading.Thread, Callable[[], None]]:
    """Start `server.run` in a thread (binding first); returns the thread and a stop-and-join callable."""
    if server._pull is None:
        server.bind()
    thread = threading.Thread(target=server.run, name="ivuscal-engine", daemon=True)
    thread.start()

    def stop_and_join() -> None:
        server.stop()
        thread.join(timeout=server.config.shutdown_s + 30)
        if thread.is_alive():
            log.error("engine thread did not stop within %.0f s", server.config.shutdown_s + 30)

    return thread, stop_and_join
