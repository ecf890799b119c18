"""The live view's web app (Starlette): the page, its WebSocket, `/metrics` (docs/streaming.md, 'Live view').

`ResultsBridge` subscribes to the engine's results PUB socket on the app's event loop
(zmq.asyncio) and folds each event into one `ViewState`. Each browser has its own sender
coroutine that, whenever the state changed, sends what that browser has not seen: the newest
result and preview only (latest wins: a slow or stalled browser skips frames, counted in
`bridge_skipped`), but every new final row. A browser's slowness only delays its own
coroutine: the engine's PUB socket never waits for a subscriber, and the bridge never waits
for a browser.

WebSocket messages to the page: text = a JSON `state` update (engine/view/state.py), binary =
a preview: 4-byte big-endian header length, JSON header (stream, pullback, frame, width,
height, center_xy), JPEG bytes. From the page: `{"select": stream id or null}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zmq
import zmq.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.streaming import protocol as p
from engine.streaming.metrics import CONTENT_TYPE, EngineMetrics
from engine.view.state import Cursor, ViewState

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


class ResultsBridge:
    """Engine events -> `ViewState`, and a change signal for the browsers' senders."""

    def __init__(self, results_address: str, metrics: EngineMetrics | None, stale_after_s: float) -> None:
        self.results_address = results_address
        self.metrics = metrics  # fed from here only when the engine runs in another process
        self.state = ViewState(stale_after_s)
        self.clients = 0  # pages connected now
        self._changed = asyncio.Condition()

    async def changed_since(self, version: int) -> int:
        """Wait until the state's version differs from `version`; returns the new version."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.state.version != version)
            return self.state.version

    async def touch(self) -> None:
        """Mark the state changed (a browser changed its selection)."""
        async with self._changed:
            self.state.version += 1
            self._changed.notify_all()

    async def receive(self) -> None:
        """Subscribe and apply events until cancelled; ZeroMQ reconnects to a restarted engine by itself."""
        context = zmq.asyncio.Context()
        socket = context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, 10_000)
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.connect(self.results_address)
        try:
            while True:
                parts = await socket.recv_multipart()
                try:
                    event = p.decode_event(parts)
                except p.ProtocolError as error:
                    log.warning("view: undecodable event skipped: %s", error)
                    continue
                if self.metrics is not None:
                    self.metrics.observe(event["kind"], event.get("stream"), event)
                async with self._changed:
                    self.state.apply(event)
                    self._changed.notify_all()
        finally:
            socket.close()
            context.term()

    async def watch_heartbeats(self) -> None:
        """Tell the browsers when the engine's heartbeats stop (engine stopped or unreachable)."""
        was_reachable = False
        while True:
            await asyncio.sleep(0.25)
            reachable = self.state.reachable()
            if was_reachable and not reachable:
                async with self._changed:
                    self.state.engine_lost()
                    self._changed.notify_all()
            was_reachable = reachable


def pack_preview(header: dict[str, Any], jpeg: bytes) -> bytes:
    """The binary WebSocket message of one preview."""
    head = json.dumps(header).encode()
    return len(head).to_bytes(4, "big") + head + jpeg


def same_origin(websocket: WebSocket) -> bool:
    """Only pages served from this host may connect (a browser sends Origin; other clients may omit it)."""
    origin = websocket.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == websocket.headers.get("host")


def create_app(
    results_address: str, metrics: EngineMetrics | None = None, feed_metrics: bool = True, stale_after_s: float = 3.0
) -> Starlette:
    """The view app for the engine publishing on `results_address` (a ZeroMQ endpoint to connect to).

    `metrics`: served at /metrics; `feed_metrics`: count the subscribed events into it (False
    when the engine in this process already does, as one of its publish hooks).
    """
    metrics = metrics or EngineMetrics()
    bridge = ResultsBridge(results_address, metrics if feed_metrics else None, stale_after_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(bridge.receive()), asyncio.create_task(bridge.watch_heartbeats())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def metrics_text(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def state_json(_request: Request) -> JSONResponse:
        update, _ = bridge.state.message(Cursor())
        update.pop("finals", None)
        return JSONResponse(update)

    async def updates(websocket: WebSocket) -> None:
        if not same_origin(websocket):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        cursor = Cursor()
        bridge.clients += 1
        selections = asyncio.create_task(_read_selections(websocket, cursor, bridge))
        try:
            version = -1
            while True:
                change = asyncio.ensure_future(bridge.changed_since(version))
                await asyncio.wait({change, selections}, return_when=asyncio.FIRST_COMPLETED)
                if selections.done():  # the page went away
                    change.cancel()
                    break
                version = change.result()
                update, preview = bridge.state.message(cursor)
                await websocket.send_text(json.dumps(update))
                if preview is not None:
                    await websocket.send_bytes(pack_preview(*preview))
        except (WebSocketDisconnect, RuntimeError):  # the browser went away mid-send
            pass
        finally:
            bridge.clients -= 1
            selections.cancel()

    routes = [
        Route("/", index),
        Route("/metrics", metrics_text),
        Route("/api/state", state_json),
        WebSocketRoute("/ws", updates),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.bridge = bridge
    app.state.metrics = metrics
    return app


async def _read_selections(websocket: WebSocket, cursor: Cursor, bridge: ResultsBridge) -> None:
    """Apply the page's stream choices until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive_json()
            choice = message.get("select") if isinstance(message, dict) else None
            cursor.choice = choice if p.valid_id(choice) else None
            await bridge.touch()
