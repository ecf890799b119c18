"""Prometheus metrics of the live engine (docs/streaming.md, 'Metrics').

`EngineMetrics` counts what the engine publishes: inside `ivuscal serve` it is one of the
server's `publish_hooks` (called by the worker after each event is sent, so every count is exact
and nothing waits on a scrape); in `ivuscal view` it is fed the same events from the results
socket. Frames received, queue depth and open streams are read at scrape time from the live
server (`EngineStats.gauges`) or, outside the engine's process, from its last heartbeat.
Every series carries the engine's `backend` and `model` as labels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.025,
    0.033,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

Gauges = Callable[[], dict[str, int]]


class EngineMetrics:
    """Counters, gauges and latency histograms of one engine in a registry of their own."""

    def __init__(self, backend: str = "unknown", model: str = "unknown", gauges: Gauges | None = None) -> None:
        self.labels = {"backend": backend, "model": model}
        self._gauges = gauges
        self._heartbeat: dict[str, int] = {}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        names = ("backend", "model")
        self.processed = Counter(
            "ivuscal_frames_processed", "Frames analysed (a result was published).", names, registry=self.registry
        )
        self.dropped = Counter(
            "ivuscal_frames_dropped",
            "Frames not analysed: the engine queue was full (drop events).",
            names,
            registry=self.registry,
        )
        self.filled = Counter(
            "ivuscal_frames_filled",
            "Frames never analysed and filled by holding the last probabilities (gap events).",
            names,
            registry=self.registry,
        )
        self.rejected = Counter(
            "ivuscal_messages_rejected",
            "Messages and frames refused, by the error event's code (docs/protocol.md).",
            (*names, "reason"),
            registry=self.registry,
        )
        self.previews = Counter(
            "ivuscal_previews", "JPEG previews published for the web view.", names, registry=self.registry
        )
        self.queueing = Histogram(
            "ivuscal_queueing_seconds",
            "Received to taken off the queue by the worker.",
            names,
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.inference = Histogram(
            "ivuscal_inference_seconds",
            "Worker start to pipeline done (polar, ensemble, filter, arcs) for the frame's batch.",
            names,
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.end_to_end = Histogram(
            "ivuscal_end_to_end_seconds",
            "Engine-added latency: received to published.",
            names,
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(self))
        self._create_series()

    def _create_series(self) -> None:
        """Series exist (at 0) from the start, not from their first event."""
        for metric in (
            self.processed,
            self.dropped,
            self.filled,
            self.previews,
            self.queueing,
            self.inference,
            self.end_to_end,
        ):
            metric.labels(**self.labels)

    def observe(self, kind: str, stream: str | None, body: dict[str, Any]) -> None:
        """Count one published event (any thread; prometheus-client's metrics are thread-safe)."""
        labels = self.labels
        if kind == "heartbeat":
            self._heartbeat_seen(body)
        elif kind == "result":
            self.processed.labels(**labels).inc()
            t = body.get("t") or {}
            if {"received_ns", "started_ns", "inferred_ns", "published_ns"} <= t.keys():
                self.queueing.labels(**labels).observe((t["started_ns"] - t["received_ns"]) / 1e9)
                self.inference.labels(**labels).observe((t["inferred_ns"] - t["started_ns"]) / 1e9)
                self.end_to_end.labels(**labels).observe((t["published_ns"] - t["received_ns"]) / 1e9)
        elif kind == "drop":
            self.dropped.labels(**labels).inc()
        elif kind == "gap" and "frames" in body:
            self.filled.labels(**labels).inc(len(body["frames"]))
        elif kind == "error":
            self.rejected.labels(**labels, reason=str(body.get("code", "other"))).inc()
        elif kind == "preview":
            self.previews.labels(**labels).inc()

    def _heartbeat_seen(self, body: dict[str, Any]) -> None:
        with self._lock:
            if self.labels["backend"] == "unknown":  # outside the engine: learn the labels from it
                self.labels = {
                    "backend": str(body.get("backend", "unknown")),
                    "model": str(body.get("model", "unknown")),
                }
                self._create_series()
            streams = body.get("streams")
            self._heartbeat = {
                "frames_received": int(body.get("frames_received", 0)),
                "queue_depth": int(body.get("queue_depth", 0)),
                "open_streams": len(streams) if isinstance(streams, list) else 0,
            }

    def live(self) -> dict[str, int]:
        """Frames received, queue depth and open streams: from the server, else the last heartbeat."""
        if self._gauges is not None:
            return self._gauges()
        with self._lock:
            return dict(self._heartbeat)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class _LiveCollector:
    """Values read when scraped rather than counted as events pass."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        live = self.metrics.live()
        labels = self.metrics.labels
        names, values = list(labels), list(labels.values())
        received = CounterMetricFamily("ivuscal_frames_received", "Valid frames received by the engine.", labels=names)
        received.add_metric(values, live.get("frames_received", 0))
        queue = GaugeMetricFamily("ivuscal_queue_depth", "Messages waiting in the engine queue.", labels=names)
        queue.add_metric(values, live.get("queue_depth", 0))
        streams = GaugeMetricFamily("ivuscal_open_streams", "Streams the engine holds state for.", labels=names)
        streams.add_metric(values, live.get("open_streams", 0))
        yield from (received, queue, streams)


def serve_metrics(metrics: EngineMetrics, host: str, port: int) -> Any:
    """`/metrics` on its own HTTP server (a daemon thread); returns the server (`.shutdown()`)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
