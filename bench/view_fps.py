"""The live view's displayed frame rate in a real headless Chromium during a 30 frames/s replay.

The engine (in this process, previews on) and its view run as `ivuscal serve --view` would; a
pullback is replayed from DICOM at `fps`; every 0.5 s the page's own frame-rate figure (draws
in the last 2 s, the number shown as 'view frame rate') is read. Goal: >= 25 frames/s at 30.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from bench.result import ScenarioResult, skipped
from engine.pipeline import PipelineSettings
from engine.streaming.latency import engine_latency_ms, summarize_ms
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.preview import PreviewSettings
from engine.streaming.server import ServerConfig, create_server
from engine.view.attach import attach
from tools.chromium import chromium_path, launch_args
from tools.replay import replay_file

NAME, TITLE = "view", "Live view: displayed frame rate in headless Chromium"


def run(
    pullback: Path, model: Path, backend: str, model_description: str, fps: float = 30.0, threads: int | None = 1
) -> ScenarioResult:
    """Replay `pullback` at `fps` through an engine with its view open in Chromium; sample the page's frame rate."""
    settings = {
        "pullback": pullback.name,
        "fps": fps,
        "backend": backend,
        "model": model_description,
        "browser": chromium_path(),
    }
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        return skipped(NAME, TITLE, "playwright is not installed (pip install -e '.[test]')", settings)
    if chromium_path() is None:
        return skipped(NAME, TITLE, "no Chromium (Debian package 'chromium')", settings)
    config = ServerConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", preview=PreviewSettings(fps=fps))
    server = create_server(config, backend=backend, model=model, settings=PipelineSettings(), threads=threads)
    samples: list[float] = []
    with LoopbackEngine(server) as engine, sync_playwright() as playwright:
        attached = attach(server, "127.0.0.1:0", None)
        browser = playwright.chromium.launch(**launch_args())
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 820})
            page.goto(attached.view_url)
            page.wait_for_function("window.__ivuscalView.stats.updates > 0")
            replay = threading.Thread(
                target=replay_file,
                args=(pullback, engine.frames_endpoint, fps, "bench", "bench-view"),
                kwargs={"context": server.context},
            )
            started = time.monotonic()
            replay.start()
            while replay.is_alive():
                time.sleep(0.5)
                if time.monotonic() - started > 3.0:  # the first 2 s window is filling
                    samples.append(page.evaluate("window.__ivuscalView.stats.fps"))
            replay.join()
            events = engine.wait_for_summaries(1, timeout_s=120)
            page.wait_for_timeout(500)
            stats = page.evaluate("window.__ivuscalView.stats")
        finally:
            browser.close()
            attached.stop()
    shown = np.asarray(samples[:-1] or samples, dtype=np.float64)  # the last sample may straddle the end
    results = sum(e["kind"] == "result" for e in events)
    latency = summarize_ms(engine_latency_ms(events))
    summary = {
        "view_fps_median": float(np.median(shown)) if shown.size else float("nan"),
        "view_fps_min": float(shown.min()) if shown.size else float("nan"),
        "results": results,
        "received_by_page": stats["received"],
        "drawn": stats["drawn"],
        "skipped_in_page": stats["skipped"],
        "skipped_at_server": stats["bridgeSkipped"],
        "previews_received": stats["previews"],
        "engine_p50_ms": latency["p50_ms"],
        "engine_p99_ms": latency["p99_ms"],
    }
    notes = [
        f"goal: view frame rate >= 25 at {fps:g} frames/s; {'met' if summary['view_fps_median'] >= 25 else 'NOT met'}"
        f" (median of {shown.size} samples)"
    ]
    return ScenarioResult(name=NAME, title=TITLE, settings=settings, rows=[summary], summary=summary, notes=notes)
