"""What the live view knows, built from the engine's events (docs/protocol.md); no sockets.

`ViewState.apply(event)` keeps, per stream: the pullback in progress, every final frame so far
(the longitudinal map; frames become final exactly once, in order), the newest result and
preview, the closed lesions and the running numbers. `ViewState.message` renders what one
browser has not seen yet: only the newest result and preview (older ones are skipped, and
counted), but every final row after the browser's cursor, so the map is never missing a frame.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

Arcs = list[list[float]]


@dataclass
class StreamView:
    """One stream as the view shows it."""

    stream: str
    generation: int = 0  # +1 per pullback: tells a browser to clear its map
    pullback: dict[str, Any] | None = None
    running: bool = False
    finals: list[Arcs | None] = field(default_factory=list)  # index = frame; None: its event was missed
    calcified_frames: int = 0  # final frames with an arc
    max_arc_deg: float = 0.0  # largest single final arc
    result: dict[str, Any] | None = None
    results: int = 0  # results received for this pullback (the newest has number `results`)
    preview: tuple[dict[str, Any], bytes] | None = None
    previews: int = 0
    lesions: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    filled: int = 0
    rejected: int = 0
    flagged: int = 0  # results the reliability flag marked (ensemble disagreement above its calibration)
    latency_ms: list[float] = field(default_factory=list)  # engine-added, newest last (30 kept)
    summary: dict[str, Any] | None = None
    updated: float = 0.0

    def add_finals(self, finals: list[dict[str, Any]]) -> None:
        for final in finals:
            arcs, frame = final["arcs"], final["frame"]
            if frame < len(self.finals):
                continue
            self.finals.extend([None] * (frame - len(self.finals)))  # subscribed late, or events lost
            self.finals.append(arcs)
            self.calcified_frames += bool(arcs)
            self.max_arc_deg = max(self.max_arc_deg, *(a[2] for a in arcs), 0.0)

    def numbers(self) -> dict[str, Any]:
        """The running figures: max arc, calcified length, score points, drops, fills, latency."""
        spacing = float((self.pullback or {}).get("frame_spacing_mm") or 0.0)
        lesion_scores = [lesion.get("score", {}) for lesion in self.lesions]
        final_score = (self.summary or {}).get("score")
        score = final_score or max(lesion_scores, key=lambda s: s.get("total_assessed", 0), default=None)
        latency = sorted(self.latency_ms)
        return {
            "final_frames": len(self.finals),
            "max_arc_deg": round(self.max_arc_deg, 1),
            "calcified_frames": self.calcified_frames,
            "calcified_length_mm": round(self.calcified_frames * spacing, 2),
            "lesions": len(self.lesions),
            "score": score,
            "score_final": final_score is not None,
            "results": self.results,
            "dropped": self.dropped,
            "filled": self.filled,
            "rejected": self.rejected,
            "flagged": self.flagged,
            "latency_ms_last": round(self.latency_ms[-1], 1) if self.latency_ms else None,
            "latency_ms_p50": round(latency[len(latency) // 2], 1) if latency else None,
        }


@dataclass
class Cursor:
    """What one browser has been sent of its selected stream."""

    choice: str | None = None  # the stream the browser selected; None follows the live one
    shown: str | None = None  # the stream it was last sent
    generation: int = -1
    finals: int = 0
    results: int = 0
    previews: int = 0
    results_skipped: int = 0  # newer results arrived before this browser was ready for the last one


class ViewState:
    """Every stream's view plus the engine's health, from events (single-threaded: the bridge's loop)."""

    def __init__(self, stale_after_s: float = 3.0) -> None:
        self.streams: dict[str, StreamView] = {}
        self.engine: dict[str, Any] = {}
        self.stale_after_s = stale_after_s
        self.last_heartbeat = -float("inf")
        self.version = 0  # +1 per change

    def reachable(self, now: float | None = None) -> bool:
        return ((now or time.monotonic()) - self.last_heartbeat) <= self.stale_after_s

    def _view(self, stream: str) -> StreamView:
        if stream not in self.streams:
            self.streams[stream] = StreamView(stream)
        return self.streams[stream]

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one decoded engine event into the state."""
        kind, stream = event.get("kind"), event.get("stream")
        self.version += 1
        if kind == "heartbeat":
            self._heartbeat(event)
            return
        if not isinstance(stream, str):
            return
        view = self._view(stream)
        pullback = event.get("pullback")
        if kind == "started" or (
            kind != "summary" and isinstance(pullback, str) and pullback != (view.pullback or {}).get("pullback")
        ):
            keys = ("pullback", "layout", "shape", "n_frames", "n_alines", "window_frames", "frame_spacing_mm")
            view = self.streams[stream] = StreamView(stream, generation=view.generation + 1, running=True)
            view.pullback = {k: event.get(k) for k in keys}  # a pullback first seen mid-way lacks the start's details
        view.updated = time.monotonic()
        if kind == "result":
            view.results += 1
            view.result = event
            view.flagged += bool((event.get("uncertainty") or {}).get("flagged"))
            view.add_finals(event.get("final", []))
            view.lesions.extend(event.get("closed_lesions", []))
            t = event.get("t") or {}
            if "published_ns" in t and "received_ns" in t:
                view.latency_ms = [*view.latency_ms[-29:], (t["published_ns"] - t["received_ns"]) / 1e6]
        elif kind in ("final", "gap"):
            view.add_finals(event.get("final", []))
            view.filled += len(event.get("frames", []))
        elif kind == "drop":
            view.dropped += 1
        elif kind == "error":
            view.rejected += 1
        elif kind == "summary":
            view.running = False
            view.summary = event.get("summary") or {}
            view.lesions = list(view.summary.get("lesions", view.lesions))
        elif kind == "preview":
            header = {k: event.get(k) for k in ("stream", "pullback", "frame", "width", "height", "center_xy")}
            view.previews += 1
            view.preview = (header, bytes(event.get("jpeg", b"")))

    def _heartbeat(self, event: dict[str, Any]) -> None:
        self.last_heartbeat = time.monotonic()
        keys = ("backend", "model", "queue_depth", "frames_per_s", "frames_dropped", "uptime_s")
        self.engine = {k: event.get(k) for k in keys}
        alive = set(event.get("streams") or [])
        for view in self.streams.values():
            if view.running and view.stream not in alive:  # the engine restarted: that pullback is gone
                view.running = False

    def engine_lost(self) -> None:
        """No heartbeat for `stale_after_s`: nothing is running as far as the view can tell."""
        for view in self.streams.values():
            view.running = False
        self.version += 1

    def selected(self, cursor: Cursor) -> StreamView | None:
        """The browser's chosen stream, else the running stream updated last, else the last updated."""
        if cursor.choice in self.streams:
            return self.streams[cursor.choice]
        candidates = sorted(self.streams.values(), key=lambda v: (v.running, v.updated))
        return candidates[-1] if candidates else None

    def message(self, cursor: Cursor) -> tuple[dict[str, Any], tuple[dict[str, Any], bytes] | None]:
        """The update for one browser (JSON-able) and a preview it has not had; advances `cursor`."""
        view = self.selected(cursor)
        reachable = self.reachable()
        update: dict[str, Any] = {
            "type": "state",
            "engine": {**self.engine, "reachable": reachable},
            "streams": sorted(self.streams),
            "running": sorted(v.stream for v in self.streams.values() if v.running),
            "stream": None,
        }
        if view is None:
            return update, None
        if (cursor.shown, cursor.generation) != (view.stream, view.generation):
            cursor.shown, cursor.generation, cursor.finals, cursor.results, cursor.previews = (
                view.stream,
                view.generation,
                0,
                0,
                0,
            )
            update["reset"] = True
        update.update(
            stream=view.stream, pullback=view.pullback, live=view.running and reachable, numbers=view.numbers()
        )
        update["lesions"] = [
            [lesion["start_frame"], lesion["end_frame"], lesion["max_arc_deg"]] for lesion in view.lesions
        ]
        update["finals"] = {"from": cursor.finals, "rows": view.finals[cursor.finals :]}
        cursor.finals = len(view.finals)
        if view.results > cursor.results and view.result is not None:
            skipped = view.results - cursor.results - 1  # results of this pullback this browser never got
            cursor.results_skipped += skipped
            update["result"] = _result_payload(view.result, skipped)
            cursor.results = view.results
        update["bridge_skipped"] = cursor.results_skipped
        if view.summary is not None and not view.running:
            update["summary"] = {
                k: view.summary.get(k) for k in ("max_arc_deg", "calcium_length_mm", "score", "n_frames")
            }
        preview = None
        if view.previews > cursor.previews and view.preview is not None:
            preview, cursor.previews = view.preview, view.previews
        return update, preview


def _result_payload(result: dict[str, Any], skipped: int) -> dict[str, Any]:
    """A result as the page draws it: provisional arcs, the newest final frame, spread row, latency."""
    finals = result.get("final", [])
    t = result.get("t") or {}
    spread = result.get("spread_u8")
    return {
        "frame": result.get("frame"),
        "position_mm": result.get("position_mm"),
        "provisional": result.get("provisional", {}).get("arcs", []),
        "provisional_total_deg": result.get("provisional", {}).get("total_arc_deg", 0.0),
        "final": {"frame": finals[-1]["frame"], "arcs": finals[-1]["arcs"]} if finals else None,
        "spread_u8": base64.b64encode(spread).decode() if isinstance(spread, bytes) else None,
        "spread_max": (result.get("uncertainty") or {}).get("spread_max"),
        "flagged": bool((result.get("uncertainty") or {}).get("flagged")),
        "in_calcium": (result.get("lesion") or {}).get("in_calcium", False),
        "latency_ms": (t["published_ns"] - t["received_ns"]) / 1e6
        if "published_ns" in t and "received_ns" in t
        else None,
        "skipped_before": skipped,
    }
