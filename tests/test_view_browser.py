"""The live web view in a real headless Chromium (Playwright, Debian's chromium): a generated pullback
is replayed through the real engine at 30 frames/s and the page is checked from inside.

Without Chromium these tests skip, except under CI=true, where they fail (docs/streaming.md).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_streaming_fixtures import loopback, make_ensemble, make_frames, start

from engine.streaming.preview import PreviewSettings
from engine.view.app import create_app
from engine.view.attach import Attached, attach
from engine.view.runner import ViewServer
from tools.chromium import chromium_path, launch_args
from tools.replay import send_pullback

try:
    from playwright import sync_api as playwright_api
except ImportError:  # the test extra installs it; under CI it must be there
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

N_FRAMES = 90
AMBER, RED, CALCIUM, EMPTY = (255, 176, 0), (230, 40, 40), (255, 120, 0), (28, 31, 37)

# Installed in the page: after every draw, sample the cross-section canvas along both arc rings,
# one pixel per 2 degrees, and count samples inside the drawn arcs that have the arc's colour and
# samples away from them that do not.
CHECK_ARCS_JS = """([amber, red]) => {
  const v = window.__ivuscalView;
  const near = (px, rgb) => px.slice(0, 3).every((c, i) => Math.abs(c - rgb[i]) < 40);
  const offset = (a, s) => (((a - s) % 360) + 360) % 360;
  const inside = (a, arcs) => arcs.some(([s, , e]) => offset(a, s) >= 2 && offset(a, s) <= e - 2);
  const close = (a, arcs) => arcs.some(([s, , e]) => offset(a, s) >= 358 || offset(a, s) <= e + 2);
  const ring = (arcs, r, rgb) => {
    const n = { inside: 0, insideOk: 0, outside: 0, outsideOk: 0 };
    for (let a = 1; a < 360; a += 2) {
      const rad = (a * Math.PI) / 180;
      const x = Math.round(v.geometry.cx + r * Math.cos(rad)), y = Math.round(v.geometry.cy + r * Math.sin(rad));
      const px = v.sampleCrossSection(x, y);
      if (inside(a, arcs)) { n.inside += 1; n.insideOk += near(px, rgb); }
      else if (!close(a, arcs)) { n.outside += 1; n.outsideOk += !near(px, rgb); }
    }
    return n;
  };
  v.checks = [];
  v.onDrawn = (d) => v.checks.push({
    frame: d.frame, provisional: d.provisional, final: d.final,
    p: ring(d.provisional, v.geometry.rProvisional, amber),
    f: ring(d.final ? d.final.arcs : [], v.geometry.rFinal, red),
  });
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if chromium_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI=true but no Chromium: scripts/test.sh installs Debian's 'chromium' (scripts/system-packages.txt)"
            )
        pytest.skip("no Chromium (Debian package 'chromium'; scripts/test.sh installs it as root)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_args())
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ensemble(tmp_path_factory.mktemp("view") / "ensemble.safetensors", make_frames(N_FRAMES, seed=5))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 820})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def engine_with_view(model: Path, tmp_path: Path) -> Iterator[tuple[Any, Attached]]:
    """An engine in this process with previews, and its view on a free loopback port."""
    with loopback(model, tmp_path, preview=PreviewSettings()) as engine:
        attached = attach(engine.server, "127.0.0.1:0", None)
        try:
            yield engine, attached
        finally:
            attached.stop()


def stats(page: Any) -> dict[str, Any]:
    return page.evaluate("window.__ivuscalView.stats")


def wait_page(page: Any, expression: str, timeout_s: float = 30.0) -> None:
    page.wait_for_function(expression, timeout=timeout_s * 1000)


def near(pixel: list[int], rgb: tuple[int, int, int]) -> bool:
    return all(abs(c - e) < 40 for c, e in zip(pixel[:3], rgb, strict=True))


def test_every_frame_is_drawn_or_skipped_and_the_arcs_lie_at_their_angles(
    page: Any, engine_with_view: tuple[Any, Attached]
) -> None:
    engine, attached = engine_with_view
    page.goto(attached.view_url)
    wait_page(page, "window.__ivuscalView.stats.updates > 0")  # connected, and the engine's heartbeat is in
    page.evaluate(CHECK_ARCS_JS, [list(AMBER), list(RED)])
    frames = make_frames(N_FRAMES, seed=5)
    sender = threading.Thread(
        target=send_pullback, args=(engine.sender(), [(0, frames)], start(n_frames=N_FRAMES), 30.0)
    )
    sender.start()
    growth = []
    while not any(e["kind"] == "summary" for e in engine.events):
        growth.append(stats(page)["mapColumns"])
        time.sleep(0.1)
    sender.join()
    wait_page(page, f"window.__ivuscalView.lastDrawn && window.__ivuscalView.lastDrawn.frame === {N_FRAMES - 1}")
    wait_page(page, f"window.__ivuscalView.stats.mapColumns === {N_FRAMES}")
    counts = stats(page)

    # every result that reached the page was drawn or counted as skipped; the server counted the rest
    assert counts["drawn"] + counts["skipped"] == counts["received"]
    assert counts["received"] + counts["bridgeSkipped"] == N_FRAMES
    assert counts["drawn"] >= 10  # how many depends on the machine: the frame rate is measured in bench/, not here

    # the drawn arcs are the engine's, at their angles on the canvas
    published = {e["frame"]: e for e in engine.events if e["kind"] == "result"}
    checks = page.evaluate("window.__ivuscalView.checks")
    with_arcs = [c for c in checks if c["provisional"]]
    assert len(with_arcs) >= 10
    for check in checks:
        result = published[check["frame"]]
        assert check["provisional"] == result["provisional"]["arcs"]
        assert check["p"]["insideOk"] == check["p"]["inside"] and check["p"]["outsideOk"] == check["p"]["outside"], (
            check
        )
        if check["final"] is not None:
            assert check["final"]["arcs"] == result["final"][-1]["arcs"]
            assert (
                check["f"]["insideOk"] == check["f"]["inside"] and check["f"]["outsideOk"] == check["f"]["outside"]
            ), check
    assert sum(c["p"]["inside"] for c in checks) > 100 and sum(c["p"]["outside"] for c in checks) > 100

    # the longitudinal map grew as the pullback advanced, and holds the final arcs
    assert growth == sorted(growth) and len(set(growth)) >= 5
    finals = {
        f["frame"]: f["arcs"]
        for e in engine.events
        for f in e.get("final", [])
        if e["kind"] in ("result", "final", "gap")
    }
    assert sorted(finals) == list(range(N_FRAMES))
    for frame, arcs in finals.items():
        for start_deg, _, extent in arcs:
            if extent >= 6:
                assert near(
                    page.evaluate(f"window.__ivuscalView.sampleMap({frame}, {(start_deg + extent / 2) % 360})"), CALCIUM
                ), (frame, arcs)
        if not arcs:
            assert near(page.evaluate(f"window.__ivuscalView.sampleMap({frame}, 180)"), EMPTY)

    # when the pullback is over the page says so
    wait_page(page, "document.getElementById('status').textContent === 'No pullback running'")


HEARS_THE_ENGINE = "document.getElementById('status').textContent === 'No pullback running'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_page_recovers_after_the_engine_restarts(page: Any, model: Path, tmp_path: Path) -> None:
    results = f"tcp://127.0.0.1:{free_port()}"
    config = {"results_address": results, "preview": PreviewSettings()}
    view = ViewServer(create_app(results, stale_after_s=1.0), "127.0.0.1", 0)  # `ivuscal view`, on its own
    url = view.start()
    try:
        page.goto(url)
        wait_page(page, "window.__ivuscalView.stats.updates > 0")
        frames = make_frames(20, seed=6)
        with loopback(model, tmp_path / "a", **config) as engine:
            wait_page(page, HEARS_THE_ENGINE)
            send_pullback(engine.sender(), [(0, frames)], start(pullback="before", n_frames=20), fps=30)
            engine.wait_for_summaries(1, timeout_s=60)
            wait_page(page, "window.__ivuscalView.stats.mapColumns === 20")
        wait_page(page, "document.getElementById('status').textContent === 'Engine unreachable'")
        drawn_before = stats(page)["drawn"]
        with loopback(model, tmp_path / "b", **config) as engine:
            wait_page(page, HEARS_THE_ENGINE)  # the same page, without a reload
            send_pullback(engine.sender(), [(0, frames)], start(pullback="after", n_frames=20), fps=30)
            engine.wait_for_summaries(1, timeout_s=60)
            wait_page(page, "window.__ivuscalView.lastDrawn && window.__ivuscalView.lastDrawn.frame === 19")
            wait_page(page, "window.__ivuscalView.stats.mapColumns === 20")
        assert stats(page)["drawn"] > drawn_before
        assert "after" in page.text_content("#summary")
    finally:
        view.stop()


def test_a_reloaded_page_gets_the_whole_map_of_the_pullback(page: Any, engine_with_view: tuple[Any, Attached]) -> None:
    engine, attached = engine_with_view
    frames = make_frames(30, seed=7)
    send_pullback(engine.sender(), [(0, frames)], start(n_frames=30), fps=None)
    engine.wait_for_summaries(1, timeout_s=60)
    page.goto(attached.view_url)  # connects after the pullback: the map arrives whole, the newest frame is drawn
    wait_page(page, "window.__ivuscalView.stats.mapColumns === 30")
    wait_page(page, "window.__ivuscalView.lastDrawn && window.__ivuscalView.lastDrawn.frame === 29")
    assert page.input_value("#stream") == "" and "s1" in page.text_content("#stream")
