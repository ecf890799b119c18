"""The view's state (latest-wins results, complete map rows) and the engine's JPEG previews."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
from PIL import Image

from engine.streaming import protocol as p
from engine.streaming.preview import PreviewEncoder, PreviewSettings, preview_body
from engine.view.state import Cursor, ViewState

CALIB = p.Calibration((0.02, 0.02), (300.0, 200.0), 1 / 30, 0.5)


def result(frame: int, final_frame: int | None) -> dict:
    finals = (
        [] if final_frame is None else [{"frame": final_frame, "arcs": [[10.0, 40.0, 30.0]] if final_frame % 2 else []}]
    )
    return {
        "kind": "result",
        "stream": "lab1",
        "pullback": "pb",
        "frame": frame,
        "position_mm": frame * 0.1,
        "provisional": {"arcs": [[frame, frame + 5.0, 5.0]]},
        "final": finals,
    }


def test_a_slow_browser_gets_the_newest_result_and_every_final_row() -> None:
    state = ViewState()
    state.apply({"kind": "started", "stream": "lab1", "pullback": "pb", "n_frames": 100, "frame_spacing_mm": 0.1})
    cursor = Cursor()
    first, _ = state.message(cursor)
    assert first["reset"] and "result" not in first
    for frame in range(50):
        state.apply(result(frame, frame - 6 if frame >= 6 else None))
    update, _ = state.message(cursor)  # the browser was busy during 50 results
    assert update["result"]["frame"] == 49 and update["bridge_skipped"] == 49  # 0-48 never sent to it
    assert update["finals"] == {"from": 0, "rows": [[[10.0, 40.0, 30.0]] if f % 2 else [] for f in range(44)]}
    for frame in range(50, 60):
        state.apply(result(frame, frame - 6))
    update, _ = state.message(cursor)
    assert update["result"]["frame"] == 59 and update["result"]["skipped_before"] == 9
    assert update["bridge_skipped"] == 58
    assert update["finals"]["from"] == 44 and len(update["finals"]["rows"]) == 10
    assert update["numbers"]["calcified_frames"] == 27 and update["numbers"]["max_arc_deg"] == 30.0


def test_finals_of_a_pullback_joined_late_stay_at_their_frame_index() -> None:
    state = ViewState()
    state.apply(result(20, 14))  # no `started` seen: the view joined mid-pullback
    update, _ = state.message(Cursor())
    assert update["pullback"]["pullback"] == "pb" and update["finals"]["rows"] == [None] * 14 + [[]]


def test_an_engine_restart_ends_the_running_pullback_in_the_view() -> None:
    state = ViewState(stale_after_s=60)
    state.apply({"kind": "heartbeat", "stream": None, "streams": ["lab1"], "backend": "onnxruntime", "model": "m"})
    state.apply({"kind": "started", "stream": "lab1", "pullback": "pb"})
    assert state.message(Cursor())[0]["live"]
    state.apply({"kind": "heartbeat", "stream": None, "streams": []})  # a new engine knows no stream
    update, _ = state.message(Cursor())
    assert not update["live"] and update["engine"]["reachable"]


def test_choosing_a_stream_resets_the_browsers_map() -> None:
    state = ViewState()
    for stream in ("lab1", "lab2"):
        state.apply({"kind": "started", "stream": stream, "pullback": f"pb-{stream}"})
    cursor = Cursor()
    assert state.message(cursor)[0]["stream"] == "lab2"  # the one updated last
    cursor.choice = "lab1"
    update, _ = state.message(cursor)
    assert update["stream"] == "lab1" and update["reset"] and update["streams"] == ["lab1", "lab2"]


def frame_message(pixels: np.ndarray, layout: str = "cartesian") -> p.FrameMessage:
    return p.FrameMessage(
        stream="lab1", pullback="pb", seq=3, frame_index=3, t_acq=0.0, layout=layout, calibration=CALIB, pixels=pixels
    )


def test_a_cartesian_preview_is_reduced_with_the_catheter_centre_scaled() -> None:
    pixels = np.zeros((600, 400), dtype=np.uint8)
    pixels[:, 200:] = 255
    body = preview_body(frame_message(pixels), PreviewSettings(max_side=256))
    image = np.asarray(Image.open(io.BytesIO(body["jpeg"])))
    assert image.shape == (200, 134) and (body["width"], body["height"]) == (134, 200)
    assert body["center_xy"] == [round(200 / 3, 3), 100.0]
    assert image[:, :60].mean() < 10 and image[:, 75:].mean() > 245


def test_a_polar_preview_puts_90_degrees_at_6_oclock() -> None:
    polar = np.zeros((32, 360), dtype=np.float32)
    polar[:, 85:95] = 1.0  # A-lines around 90 degrees: clockwise from 3 o'clock, so straight down
    body = preview_body(frame_message(polar, "polar"), PreviewSettings(max_side=64))
    image = np.asarray(Image.open(io.BytesIO(body["jpeg"]))).astype(int)
    assert image[56, 32] > 200 and image[8, 32] < 40 and image[32, 56] < 40 and image[32, 8] < 40


def test_the_preview_encoder_keeps_only_the_newest_frame_and_its_rate() -> None:
    published: list[tuple[str, str | None, dict]] = []
    encoder = PreviewEncoder(PreviewSettings(fps=10, max_side=64), published.append)
    encoder.start()
    try:
        pixels = np.zeros((128, 128), dtype=np.uint8)
        deadline = time.monotonic() + 1.0
        offered = 0
        while time.monotonic() < deadline:
            encoder.offer("lab1", frame_message(pixels))
            offered += 1
            time.sleep(0.002)
    finally:
        encoder.stop()
    assert all(kind == "preview" and stream == "lab1" for kind, stream, _ in published)
    assert 5 <= len(published) <= 13  # 10 a second, with a burst of 2 allowed
    assert encoder.encoded == len(published) and encoder.skipped + encoder.encoded >= offered - 1
    assert not any(t.name == "ivuscal-preview" for t in threading.enumerate())


def test_the_reliability_flag_reaches_the_page_and_its_count() -> None:
    state = ViewState()
    state.apply({"kind": "started", "stream": "lab1", "pullback": "pb", "n_frames": 10, "frame_spacing_mm": 0.1})
    for frame in range(6):
        event = result(frame, None)
        event["uncertainty"] = {"spread_mean": 0.3, "spread_max": 0.6, "flagged": frame >= 4}
        state.apply(event)
    update, _ = state.message(Cursor())
    assert update["result"]["flagged"] is True and update["result"]["frame"] == 5
    assert update["numbers"]["flagged"] == 2 and update["numbers"]["results"] == 6
