"""Give an engine in this process its metrics, web view and metrics endpoint (`serve`, `demo`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import InputError
from engine.streaming.metrics import EngineMetrics, serve_metrics
from engine.streaming.server import StreamingServer
from engine.view.runner import ViewServer, connectable, host_port


@dataclass
class Attached:
    """What `attach` started: the view's URL, the metrics URL, and how to stop them."""

    metrics: EngineMetrics
    view_url: str | None = None
    metrics_url: str | None = None
    view: ViewServer | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def metrics_endpoint(self) -> str | None:
        """Where /metrics is served: its own server, else the view's port."""
        return self.metrics_url or (self.view_url and self.view_url + "metrics")

    def wait_for_browser(self, timeout_s: float) -> bool:
        """Wait until a page is connected to the view (or `timeout_s` passed); True if one is."""
        deadline = time.monotonic() + timeout_s
        while self.view is not None and self.view.clients() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.view is not None and self.view.clients() > 0

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops = []


def attach(
    server: StreamingServer, view: str | None, metrics: str | None, view_fallback_port: bool = False
) -> Attached:
    """Count the engine's events into metrics; serve the view (page + /metrics) and/or /metrics alone.

    Call after `server.bind()`. `view`, `metrics`: HOST:PORT or None. With `view_fallback_port`
    a view port that is taken is replaced by a free one (the demo). Raises InputError for a bad
    or unusable address.
    """
    engine_metrics = EngineMetrics(
        server.status.get("backend", "unknown"), server.status.get("model", "unknown"), gauges=server.stats.gauges
    )
    server.publish_hooks.append(engine_metrics.observe)
    attached = Attached(engine_metrics)
    if view is not None:
        from engine.view.app import create_app

        host, port = host_port(view, "--view", server.config.insecure)
        for candidate in (port, 0) if view_fallback_port and port else (port,):
            app = create_app(connectable(server.endpoints[1]), engine_metrics, feed_metrics=False)
            view_server = attached.view = ViewServer(app, host, candidate)
            try:
                attached.view_url = view_server.start()
                break
            except InputError:
                if candidate == 0 or not view_fallback_port:
                    raise
        attached._stops.append(view_server.stop)
    if metrics is not None:
        host, port = host_port(metrics, "--metrics", server.config.insecure)
        try:
            http = serve_metrics(engine_metrics, host, port)
        except OSError as error:
            raise InputError(f"cannot serve metrics on {metrics}: {error}") from None
        attached.metrics_url = f"http://{host}:{http.server_port}/metrics"
        attached._stops.append(http.shutdown)
    return attached
