"""The live view's displayed frame rate in a real headless Chromium during a 30 frames/s replay.

The pullback is replayed from DICOM at `fps` through the engine in this process: alone; with
its view and previews as `ivuscal serve --view` runs them, no page open; and with the page open
in Chromium (the page can show no more frames than the engine finishes). The engine-added
latency of the three says what the view and the browser cost the engine on this machine.
"view alone": the events of the last run (results, previews, finals, heartbeats) are published
again on a PUB socket at `fps` results a second to a view of their own (`ivuscal view`), so the
page's capacity is measured apart from the engine's speed on this machine. Every 0.5 s the
page's own frame-rate figure (draws in the last 2 s, shown as 'view frame rate') is read.
Goal: >= 25 frames/s at 30.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bench.result import ScenarioResult, skipped
from engine.pipeline import PipelineSettings
from engine.streaming import protocol as p
from engine.streaming.latency import engine_latency_ms, summarize_ms
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.preview import PreviewSettings
from engine.streaming.server import ServerConfig, create_server
from engine.view.app import create_app
from engine.view.attach import attach
from engine.view.runner import ViewServer
from tools.chromium import chromium_path, launch_args
from tools.replay import Pacer, replay_file

NAME, TITLE = "view", "Live view: displayed frame rate in headless Chromium"


def run(
    pullback: Path, model: Path, backend: str, model_description: str, fps: float = 30.0, threads: int | None = 1
) -> ScenarioResult:
    """The rows of the module docstring; skipped without playwright or Chromium."""
    settings = {"pullback": pullback.name, "fps": fps, "backend": backend, "model": model_description}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return skipped(NAME, TITLE, "playwright is not installed (pip install -e '.[test]')", settings)
    if chromium_path() is None:
        return skipped(NAME, TITLE, "no Chromium (Debian package 'chromium')", settings)
    settings["browser"] = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_args())
        try:
            rows = [_engine_run(None, "engine alone", pullback, model, backend, fps, threads)[0]]
            rows.append(_engine_run(None, "engine + view, no page open", pullback, model, backend, fps, threads)[0])
            row, events = _engine_run(browser, "engine + view + page", pullback, model, backend, fps, threads)
            rows.append(row)
            view_row = _view_alone(browser, events, fps)
        finally:
            browser.close()
    rows.append(view_row)
    notes = [
        f"goal: view frame rate >= 25 at {fps:g} frames/s: {row['run']} "
        + ("met" if row["view_fps_median"] >= 25 else "NOT met")
        for row in rows[2:]
    ]
    return ScenarioResult(name=NAME, title=TITLE, settings=settings, rows=rows, summary=view_row, notes=notes)


def _engine_run(
    browser: Any, run: str, pullback: Path, model: Path, backend: str, fps: float, threads: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The replay through the engine: alone, with its view (previews on), and with the page open when `browser`."""
    with_view = run != "engine alone"
    preview = PreviewSettings(fps=fps) if with_view else None
    config = ServerConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", preview=preview)
    server = create_server(config, backend=backend, model=model, settings=PipelineSettings(), threads=threads)
    samples: list[float] = []
    stats: dict[str, Any] = {}
    with LoopbackEngine(server) as engine:
        attached = attach(server, "127.0.0.1:0", None) if with_view else None

        def replay_until_summary() -> None:
            replay_file(pullback, engine.frames_endpoint, fps, "bench", "bench-view", context=server.context)
            engine.wait_for_summaries(1, timeout_s=600)

        try:
            if browser is not None and attached is not None:
                samples, stats = _watch(browser, attached.view_url, threading.Thread(target=replay_until_summary))
            else:
                replay_until_summary()
            events = engine.wait_for_summaries(1, timeout_s=10)
        finally:
            if attached is not None:
                attached.stop()
    latency = summarize_ms(engine_latency_ms(events)[30:])  # the first second warms up
    row = {"run": run, **_row(samples, stats, sum(e["kind"] == "result" for e in events))}
    return {**row, "engine_p50_ms": latency["p50_ms"], "engine_p99_ms": latency["p99_ms"]}, events


def _view_alone(browser: Any, events: list[dict[str, Any]], fps: float) -> dict[str, Any]:
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    view = ViewServer(create_app(f"tcp://127.0.0.1:{port}"), "127.0.0.1", 0)
    url = view.start()
    try:
        heartbeat = next(e for e in events if e["kind"] == "heartbeat")
        _send(pub, heartbeat)  # the page learns that an engine is there
        time.sleep(1.0)
        publisher = threading.Thread(target=_republish, args=(pub, events, fps))
        samples, stats = _watch(browser, url, publisher)
    finally:
        view.stop()
        pub.close()
        context.term()
    return {"run": "view alone", **_row(samples, stats, sum(e["kind"] == "result" for e in events))}


def _republish(pub: zmq.Socket, events: list[dict[str, Any]], fps: float) -> None:
    """Send the recorded events again in order, `fps` results a second (what lies between goes with them)."""
    pacer, results, stop = Pacer(fps), 0, threading.Event()
    for event in events:
        if event["kind"] == "result":
            pacer.wait(results, stop)
            results += 1
        _send(pub, event)


def _send(pub: zmq.Socket, event: dict[str, Any]) -> None:
    body = {k: v for k, v in event.items() if k not in ("v", "kind", "stream")}
    pub.send_multipart(p.encode_event(event["kind"], event.get("stream"), body))


def _watch(browser: Any, url: str, feeder: threading.Thread) -> tuple[list[float], dict[str, Any]]:
    """Open the page, start `feeder`, read the page's frame rate every 0.5 s until it ends; (samples, stats)."""
    page = browser.new_page(viewport={"width": 1080, "height": 850})
    try:
        page.goto(url)
        page.wait_for_function("window.__ivuscalView.stats.updates > 0")
        started = time.monotonic()
        feeder.start()
        samples = []
        while feeder.is_alive():
            time.sleep(0.5)
            if time.monotonic() - started > 3.0:  # the first 2 s window is filling
                samples.append(page.evaluate("window.__ivuscalView.stats.fps"))
        feeder.join()
        page.wait_for_timeout(1000)
        return samples[:-1] or samples, page.evaluate("window.__ivuscalView.stats")  # the last may straddle the end
    finally:
        page.close()


def _row(samples: list[float], stats: dict[str, Any], results: int) -> dict[str, Any]:
    """A table row; the page's figures are empty (NaN) for runs without a page."""
    shown = np.asarray(samples, dtype=np.float64)
    stats = stats or dict.fromkeys(("received", "drawn", "skipped", "bridgeSkipped", "previews"), float("nan"))
    return {
        "view_fps_median": float(np.median(shown)) if shown.size else float("nan"),
        "view_fps_min": float(shown.min()) if shown.size else float("nan"),
        "results": results,
        "received_by_page": stats["received"],
        "drawn": stats["drawn"],
        "skipped_in_page": stats["skipped"],
        "skipped_at_server": stats["bridgeSkipped"],
        "previews_received": stats["previews"],
    }
