"""Reduced JPEG previews of the live frames, for the web view (docs/streaming.md, 'Live view').

The worker hands the newest frame of each processed batch to `PreviewEncoder.offer`: a
dictionary assignment and an event set, nothing else, so the analysis never waits for it. The
encoder's own thread takes the latest offered frame of each stream (older ones are overwritten,
never queued), reduces it to at most `max_side` pixels by striding (no full-size copy), encodes
it as JPEG and hands a `preview` event to `publish`; the worker sends it on the results PUB
socket with its notices, so one thread still owns that socket. At most `fps` previews per
stream per second leave the engine. Polar frames are scan-converted (nearest sample) to a
square image with the catheter at its centre, 0 degrees at 3 o'clock, clockwise as displayed
(docs/conventions.md).
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from engine.streaming import protocol as p

log = logging.getLogger(__name__)

Publish = Callable[[tuple[str, str | None, dict[str, Any]]], None]


@dataclass(frozen=True)
class PreviewSettings:
    """Size, rate and quality of the previews (`ivuscal serve --preview-fps/--preview-size`)."""

    fps: float = 30.0  # most previews per stream per second
    max_side: int = 256  # longest side of a preview, pixels
    quality: int = 70  # JPEG quality, 1-95


@dataclass(frozen=True)
class _Offer:
    stream: str
    message: p.FrameMessage


class PreviewEncoder:
    """Latest-wins JPEG encoder thread; `start()`, `offer()` from the worker, `stop()`."""

    def __init__(self, settings: PreviewSettings, publish: Publish) -> None:
        self.settings = settings
        self.publish = publish
        self.encoded = 0
        self.skipped = 0  # offers overwritten by a newer frame, or over the rate limit
        self._latest: dict[str, _Offer] = {}
        self._budget: dict[str, tuple[float, float]] = {}  # stream -> (tokens, when counted): at most `fps` a second
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ivuscal-preview", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("preview encoder did not stop within 5 s")

    def offer(self, stream: str, message: p.FrameMessage) -> None:
        """The newest processed frame of `stream` (the pixels are a view; nothing is copied here)."""
        with self._lock:
            self.skipped += stream in self._latest
            self._latest[stream] = _Offer(stream, message)
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            with self._lock:
                offers, self._latest = list(self._latest.values()), {}
            for offer in offers:
                if not self._take_token(offer.stream):
                    self.skipped += 1
                    continue
                try:
                    body = preview_body(offer.message, self.settings)
                except Exception:  # a preview must never take the engine down
                    log.exception("preview of stream %r frame %d failed", offer.stream, offer.message.frame_index)
                    continue
                self.encoded += 1
                self.publish(("preview", offer.stream, body))

    def _take_token(self, stream: str) -> bool:
        """Token bucket of 2 refilled at `fps`: frame-time jitter passes, the long-run rate stays <= fps."""
        now = time.monotonic()
        tokens, counted = self._budget.get(stream, (2.0, now))
        tokens = min(2.0, tokens + (now - counted) * self.settings.fps)
        allowed = tokens >= 1.0
        self._budget[stream] = (tokens - allowed, now)
        return allowed


def preview_body(message: p.FrameMessage, settings: PreviewSettings) -> dict[str, Any]:
    """The `preview` event body: JPEG bytes, size, catheter centre in preview pixels (x right, y down)."""
    if message.layout == "polar":
        image, centre_rc = _scan_convert(message.pixels, settings.max_side), ((settings.max_side - 1) / 2,) * 2
    else:
        step = max(1, math.ceil(max(message.pixels.shape) / settings.max_side))
        image = np.ascontiguousarray(message.pixels[::step, ::step])  # the only copy: the reduced image
        centre_rc = tuple(c / step for c in message.calibration.center_rc)
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=settings.quality)
    return {
        "pullback": message.pullback,
        "frame": message.frame_index,
        "seq": message.seq,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "center_xy": [round(float(centre_rc[1]), 3), round(float(centre_rc[0]), 3)],
        "jpeg": buffer.getvalue(),
    }


def _scan_convert(polar: np.ndarray, side: int) -> np.ndarray:
    """Polar (depth, A-lines) float32 [0, 1] or uint8 -> (side, side) uint8, nearest sample."""
    depth_index, aline_index, inside = _scan_map(polar.shape[0], polar.shape[1], side)
    samples = polar[depth_index, aline_index]
    gray = samples if polar.dtype == np.uint8 else np.rint(np.clip(samples, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.where(inside, gray, 0).astype(np.uint8)


@lru_cache(maxsize=8)
def _scan_map(n_depth: int, n_alines: int, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centre = (side - 1) / 2
    y, x = np.mgrid[0:side, 0:side].astype(np.float64) - centre
    radius = np.hypot(x, y) / (side / 2) * n_depth
    angle = np.mod(np.rad2deg(np.arctan2(y, x)), 360.0)  # clockwise as displayed: +x right, +y down
    depth_index = np.minimum(radius.astype(np.int64), n_depth - 1)
    aline_index = np.minimum((angle * n_alines / 360.0).astype(np.int64), n_alines - 1)
    return depth_index, aline_index, radius < n_depth
