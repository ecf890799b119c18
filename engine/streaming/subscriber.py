"""Subscribe to the engine's results: decode events and hand them to a callback (docs/protocol.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import zmq

from engine.streaming import protocol as p
from engine.streaming.auth import ClientKeys


def subscribe(
    address: str,
    on_event: Callable[[dict[str, Any]], None],
    stop: threading.Event,
    record: BinaryIO | None = None,
    summaries: int | None = None,
    timeout_s: float | None = None,
    context: zmq.Context | None = None,
    ready: threading.Event | None = None,
    keys: ClientKeys | None = None,
) -> int:
    """Receive events until `stop`, `summaries` pullback summaries, or `timeout_s` without events.

    Returns the number of events received; undecodable events are reported and skipped.
    `keys`: CURVE client keys, for an engine run with `--auth`.
    """
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        keys.apply(socket)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(address)
    if ready is not None:
        ready.set()
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    received = seen_summaries = 0
    last = time.monotonic()
    try:
        while not stop.is_set():
            if not poller.poll(100):
                if timeout_s is not None and time.monotonic() - last > timeout_s:
                    break
                continue
            parts = socket.recv_multipart()
            last = time.monotonic()
            try:
                event = p.decode_event(parts)
            except p.ProtocolError as error:
                on_event({"kind": "error", "stream": None, "reason": f"undecodable event: {error}"})
                continue
            received += 1
            if record is not None:
                record.write(parts[1])
                record.flush()
            on_event(event)
            seen_summaries += event["kind"] == "summary"
            if summaries is not None and seen_summaries >= summaries:
                break
    finally:
        socket.close()
    return received
