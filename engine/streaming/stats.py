"""The live engine's counters, read as one snapshot (heartbeat, and any metrics exporter).

Each counter has exactly one writing thread (noted beside it); readers take `snapshot()` from any
thread. Counters only grow, so a snapshot taken while one is written is at worst one update old.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

LATENCY_WINDOW = 4096  # recent results kept for the latency percentiles and the frame rate


@dataclass(frozen=True)
class StatsSnapshot:
    """The engine's counters at one moment (frames since start; latency of recent results, ms)."""

    frames_received: int
    frames_processed: int
    frames_dropped: int
    frames_filled: int
    rejected: dict[str, int]  # messages refused, by error code (docs/protocol.md, 'Errors')
    open_streams: int
    queue_depth: int
    frames_per_s: float  # results published over the last 2 s
    latency_p50_ms: float | None  # received -> published, recent results
    latency_p99_ms: float | None
    uptime_s: float

    @property
    def messages_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "messages_rejected": self.messages_rejected}


class EngineStats:
    """Counters written by the receiver thread or by the worker thread (never both)."""

    def __init__(self, queue_depth: Callable[[], int], open_streams: Callable[[], int]) -> None:
        """`queue_depth`, `open_streams`: gauges, read at each snapshot."""
        self._queue_depth = queue_depth
        self._open_streams = open_streams
        self.started = time.monotonic()
        # receiver thread
        self.frames_received = 0
        self.frames_dropped_queue = 0
        self.rejected_receiver: Counter[str] = Counter()
        # worker thread
        self.frames_processed = 0
        self.frames_dropped_shutdown = 0
        self.frames_filled = 0
        self.rejected_worker: Counter[str] = Counter()
        self._recent: deque[tuple[float, int]] = deque(maxlen=LATENCY_WINDOW)  # (published monotonic s, latency ns)

    def result_published(self, latency_ns: int) -> None:
        """Worker: one result went out `latency_ns` after its frame arrived."""
        self.frames_processed += 1
        self._recent.append((time.monotonic(), latency_ns))

    def gauges(self) -> dict[str, int]:
        """The cheap live values (any thread; read by the metrics at scrape time): frames received, queue
        depth, open streams."""
        return {
            "frames_received": self.frames_received,
            "queue_depth": self._queue_depth(),
            "open_streams": self._open_streams(),
        }

    def snapshot(self) -> StatsSnapshot:
        now = time.monotonic()
        recent = list(self._recent)
        latencies = np.array([ns for _, ns in recent], dtype=np.float64) / 1e6
        p50, p99 = np.percentile(latencies, [50, 99]).tolist() if latencies.size else (None, None)
        return StatsSnapshot(
            frames_received=self.frames_received,
            frames_processed=self.frames_processed,
            frames_dropped=self.frames_dropped_queue + self.frames_dropped_shutdown,
            frames_filled=self.frames_filled,
            rejected=dict(self.rejected_receiver + self.rejected_worker),
            open_streams=self._open_streams(),
            queue_depth=self._queue_depth(),
            frames_per_s=sum(now - t <= 2.0 for t, _ in recent) / 2.0,
            latency_p50_ms=None if p50 is None else round(p50, 3),
            latency_p99_ms=None if p99 is None else round(p99, 3),
            uptime_s=round(now - self.started, 3),
        )
