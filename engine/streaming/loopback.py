"""An engine and a subscriber in this process over loopback sockets (demo, latency bench, tests).

    with LoopbackEngine(server) as engine:      # server from create_server(...), not yet bound
        sender = engine.sender()                # a PUSH socket connected to the engine
        ... send start / frames / end ...
        events = engine.wait_for_summaries(1, timeout_s=30)

Every event the engine publishes after the subscription is live (the first heartbeat proves it)
is collected in `events`, in order, and optionally handed to `on_event`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from engine.errors import InternalError
from engine.streaming.auth import ClientKeys
from engine.streaming.server import StreamingServer, run_in_thread
from engine.streaming.subscriber import subscribe

log = logging.getLogger(__name__)


class LoopbackEngine:
    """Runs `server` in a thread and subscribes to it; a context manager that stops both."""

    def __init__(
        self,
        server: StreamingServer,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        ready_timeout_s: float = 30.0,
        keys: ClientKeys | None = None,
    ) -> None:
        """`keys`: CURVE client keys for the subscriber and senders (an engine configured with auth)."""
        self.server = server
        self.keys = keys
        self.on_event = on_event
        self.ready_timeout_s = ready_timeout_s
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._live = threading.Event()
        self._subscriber: threading.Thread | None = None
        self._stop_server: Callable[[], None] | None = None
        self._sockets: list[zmq.Socket] = []

    def __enter__(self) -> LoopbackEngine:
        self.frames_endpoint, self.results_endpoint = self.server.bind()
        _, self._stop_server = run_in_thread(self.server)
        self._subscriber = threading.Thread(
            target=subscribe,
            args=(self.results_endpoint, self._collect, self._stop),
            kwargs={"context": self.server.context, "keys": self.keys},
            name="ivuscal-loopback-subscriber",
            daemon=True,
        )
        self._subscriber.start()
        if not self._live.wait(self.ready_timeout_s):
            self.close()
            raise InternalError(
                f"no heartbeat from the engine at {self.results_endpoint} within {self.ready_timeout_s} s"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _collect(self, event: dict[str, Any]) -> None:
        self._live.set()
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        if self.on_event is not None:
            self.on_event(event)

    def sender(self) -> zmq.Socket:
        """A PUSH socket connected to the engine's frames endpoint (closed with the engine)."""
        socket = self.server.context.socket(zmq.PUSH)
        socket.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(socket)
        socket.connect(self.frames_endpoint)
        self._sockets.append(socket)
        return socket

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float) -> list[dict[str, Any]]:
        """Wait until `predicate(events)` holds; raises InternalError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [e.get("kind") for e in self.events]
                    raise InternalError(
                        f"engine events did not arrive within {timeout_s} s (got {len(kinds)}: {kinds[-10:]})"
                    )
                self._changed.wait(left)
            return list(self.events)

    def drain(self) -> list[dict[str, Any]]:
        """The events collected so far, which are then forgotten (long runs keep memory flat)."""
        with self._changed:
            events, self.events = self.events, []
            return events

    def wait_for_summaries(self, n: int, timeout_s: float) -> list[dict[str, Any]]:
        return self.wait_for(lambda events: sum(e["kind"] == "summary" for e in events) >= n, timeout_s)

    def close(self) -> None:
        """Stop the engine (it flushes what is queued), then the subscriber; close the senders."""
        for socket in self._sockets:
            socket.close()
        self._sockets = []
        if self._stop_server is not None:
            self._stop_server()
            self._stop_server = None
        time.sleep(0.05)  # let the shutdown events reach the subscriber
        self._stop.set()
        if self._subscriber is not None:
            self._subscriber.join(timeout=5)
            if self._subscriber.is_alive():
                log.error("loopback subscriber thread did not stop within 5 s")
