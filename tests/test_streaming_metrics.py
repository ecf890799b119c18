"""Prometheus /metrics of the live engine, scraped over HTTP during and after a replay with known faults."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import msgpack
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from test_streaming_fixtures import CALIB, loopback, make_ensemble, make_frames, start

from engine.streaming import protocol as p
from engine.view.attach import attach

N_FRAMES = 40
MISSING = (20, 21, 22)  # never sent: filled by the engine


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    matches = [
        v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    ]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def send_replay_with_faults(sender: object, frames: np.ndarray) -> None:
    """37 frames in order (20-22 skipped), a repeated frame, two malformed messages, one bad pixel buffer."""
    s = start(n_frames=N_FRAMES)
    sender.send_multipart(p.encode_start(s))
    seq = 0
    for i in range(N_FRAMES):
        if i in MISSING:
            continue
        sender.send_multipart(p.encode_frame(s.stream, s.pullback, seq, i, time.time(), "cartesian", CALIB, frames[i]))
        seq += 1
        time.sleep(1 / 60)
        if i == 10:
            sender.send_multipart([b"frame", b"\xc1 not msgpack", b""])
            sender.send_multipart([b"bogus", msgpack.packb({"v": 1})])
            parts = p.encode_frame(s.stream, s.pullback, seq, 11, time.time(), "cartesian", CALIB, frames[11])
            sender.send_multipart([parts[0], parts[1], bytes(10)])  # wrong pixel size
        if i == 30:
            sender.send_multipart(
                p.encode_frame(s.stream, s.pullback, seq, 5, time.time(), "cartesian", CALIB, frames[5])
            )  # out of order
            seq += 1
    sender.send_multipart(p.encode_end(p.PullbackEnd(s.stream, s.pullback, N_FRAMES)))


def test_metrics_report_the_replays_counts_exactly(tmp_path: Path) -> None:
    frames = make_frames(N_FRAMES, seed=9)
    model = make_ensemble(tmp_path / "e.safetensors", frames)
    with loopback(model, tmp_path) as engine:
        attached = attach(engine.server, None, "127.0.0.1:0")
        try:
            sender = threading.Thread(target=send_replay_with_faults, args=(engine.sender(), frames))
            sender.start()
            during = []
            while sender.is_alive():
                during.append(value(scrape(attached.metrics_url), "ivuscal_frames_processed_total"))
                time.sleep(0.1)
            sender.join()
            engine.wait_for_summaries(1, timeout_s=60)
            samples = scrape(attached.metrics_url)
        finally:
            attached.stop()
    processed = N_FRAMES - len(MISSING)
    labels = {"backend": engine.server.status["backend"], "model": engine.server.status["model"]}
    assert during == sorted(during) and 0 < during[-1] <= processed  # counted live, while the replay ran
    assert (
        value(samples, "ivuscal_frames_received_total", **labels) == processed + 1
    )  # the repeated frame was received, then refused
    assert value(samples, "ivuscal_frames_processed_total", **labels) == processed
    assert value(samples, "ivuscal_frames_dropped_total", **labels) == 0
    assert value(samples, "ivuscal_frames_filled_total", **labels) == len(MISSING)
    # labelled by the error event's code: two undecodable messages and a wrong pixel buffer, one repeated frame
    assert value(samples, "ivuscal_messages_rejected_total", reason="malformed", **labels) == 3
    assert value(samples, "ivuscal_messages_rejected_total", reason="out_of_order", **labels) == 1
    assert value(samples, "ivuscal_open_streams", **labels) == 0  # its pullback ended: state freed
    assert value(samples, "ivuscal_queue_depth", **labels) == 0
    for stage in ("queueing", "inference", "end_to_end"):
        assert value(samples, f"ivuscal_{stage}_seconds_count", **labels) == processed
        assert value(samples, f"ivuscal_{stage}_seconds_bucket", le="+Inf", **labels) == processed
    events = engine.events
    assert sum(e["kind"] == "result" for e in events) == processed and sum(e["kind"] == "error" for e in events) == 4
