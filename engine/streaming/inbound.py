"""The bounded, arrival-ordered queue between the receiver thread and the worker.

It holds decoded messages (`Received`) and receiver notices (`Notice`, e.g. an `error` for a
malformed message) in arrival order. At most `max_frames` frames with pixels wait at once: a
frame beyond that is turned into a pixel-free drop marker that keeps its place in the order, so
the worker reports the drop exactly once and at the right point of its stream. At most
`max_items` entries wait in all; beyond that `put` blocks the receiver (ZeroMQ's high-water mark
then pushes back on the senders).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.streaming import protocol as p

_NO_PIXELS = np.empty((0, 0), dtype=np.uint8)


@dataclass(frozen=True)
class Received:
    """A decoded inbound message, when it arrived (ns), who sent it, and why it was dropped (if it was)."""

    message: p.Inbound
    received_ns: int
    received_wall_ns: int
    user: str | None = None  # the client's CURVE key (z85) when authentication is on
    dropped: str | None = None  # reason, for a frame that was dropped (its pixels are released)

    def as_dropped(self, reason: str) -> Received:
        """This frame as a drop marker: same place, same header, no pixels."""
        assert isinstance(self.message, p.FrameMessage)
        return replace(self, message=replace(self.message, pixels=_NO_PIXELS), dropped=reason)


@dataclass(frozen=True)
class Notice:
    """An event the receiver wants published (the worker owns the PUB socket)."""

    kind: str
    stream: str | None
    body: dict[str, Any]


Item = Received | Notice


class InboundQueue:
    """Bounded FIFO: `max_frames` frames with pixels, `max_items` entries in all."""

    def __init__(self, max_frames: int, max_items: int) -> None:
        if max_items < max_frames:
            raise ValueError(f"max_items ({max_items}) must be at least max_frames ({max_frames})")
        self.max_frames, self.max_items = max_frames, max_items
        self._items: deque[Item] = deque()
        self._frames = 0
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def frames(self) -> int:
        return self._frames

    def put_frame(self, item: Received, timeout_s: float | None) -> Received | None:
        """Queue a frame, or its drop marker when `max_frames` are waiting; returns the marker or None.

        Blocks (up to `timeout_s`) only while `max_items` entries are waiting; raises TimeoutError.
        """
        with self._changed:
            self._wait_for_room(timeout_s)
            marker = item.as_dropped("engine queue full") if self._frames >= self.max_frames else None
            self._items.append(marker or item)
            self._frames += marker is None
            self._changed.notify_all()
            return marker

    def put(self, item: Item, timeout_s: float | None) -> None:
        """Queue a control message or notice; blocks while full (up to `timeout_s`, then TimeoutError)."""
        with self._changed:
            self._wait_for_room(timeout_s)
            self._items.append(item)
            self._changed.notify_all()

    def take(self, max_items: int, timeout_s: float) -> list[Item]:
        """Up to `max_items` entries in order, waiting up to `timeout_s` for the first."""
        with self._changed:
            if not self._items:
                self._changed.wait(timeout_s)
            batch: list[Item] = []
            while self._items and len(batch) < max_items:
                item = self._items.popleft()
                self._frames -= (
                    isinstance(item, Received) and item.dropped is None and isinstance(item.message, p.FrameMessage)
                )
                batch.append(item)
            self._changed.notify_all()
            return batch

    def _wait_for_room(self, timeout_s: float | None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while len(self._items) >= self.max_items:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"engine queue held {self.max_items} entries for {timeout_s} s")
            self._changed.wait(left)
