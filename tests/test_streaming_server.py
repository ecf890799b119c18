"""The live engine over real ZeroMQ sockets on loopback: diagnostics, streams, gaps, drops, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from test_streaming_fixtures import CALIB, loopback, make_ensemble, make_frames, start

from engine.streaming import protocol as p
from engine.streaming.journal import read_journal
from engine.streaming.subscriber import subscribe
from tests.serve_output import serve_endpoints
from tools.replay import send_pullback

FRAMES = make_frames(30, seed=3)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ensemble(tmp_path_factory.mktemp("model") / "ensemble.safetensors", FRAMES)


def kinds(events: list[dict], kind: str, stream: str | None = None) -> list[dict]:
    return [e for e in events if e["kind"] == kind and (stream is None or e["stream"] == stream)]


def test_malformed_messages_are_diagnosed_and_the_engine_keeps_going(model: Path, tmp_path: Path) -> None:
    good = p.encode_frame("s1", "pb1", 0, 0, 0.0, "cartesian", CALIB, FRAMES[0])
    header = msgpack.unpackb(good[1])
    bad = [
        [b"frame", b"\xc1 not msgpack", b"x"],  # corrupt header
        [b"frame", msgpack.packb({**header, "v": 2}), good[2]],  # unknown version
        [b"frame", good[1], good[2][:-1]],  # wrong size
        [b"frame", msgpack.packb({**header, "dtype": "float32", "layout": "polar"}), good[2]],  # wrong dtype for size
        [b"frame", msgpack.packb({k: v for k, v in header.items() if k != "calib"}), good[2]],  # missing field
        [b"video", b"{}"],  # unknown topic
        [b"end", msgpack.packb({"v": 1, "stream": "s1", "pullback": "never-started"})],  # end without start
    ]
    moved = p.Calibration(CALIB.pixel_spacing_mm, (20.0, 20.0), CALIB.frame_time_s, CALIB.pullback_rate_mm_s)
    with loopback(model, tmp_path) as engine:
        sender = engine.sender()
        for parts in bad:
            sender.send_multipart(parts)
        sender.send_multipart(p.encode_start(start(n_frames=len(FRAMES))))
        sender.send_multipart(p.encode_frame("s1", "pb1", 0, 0, 0.0, "cartesian", moved, FRAMES[0]), copy=False)
        sender.send_multipart(p.encode_start(start(n_frames=len(FRAMES))))  # a repeated start
        for i, frame in enumerate(FRAMES):
            sender.send_multipart(p.encode_frame("s1", "pb1", i + 1, i, 0.0, "cartesian", CALIB, frame), copy=False)
        sender.send_multipart(p.encode_end(p.PullbackEnd("s1", "pb1", len(FRAMES))))
        sender.send_multipart(p.encode_frame("s1", "pb1", 99, 30, 0.0, "cartesian", CALIB, FRAMES[0]),
                              copy=False)  # after its end
        events = engine.wait_for(lambda ev: len(kinds(ev, "error")) == len(bad) + 3, timeout_s=60)
    errors = kinds(events, "error")
    reasons = " | ".join(e["reason"] for e in errors)
    for expected in ("not valid msgpack", "version 2", "pixel buffer has", "missing field 'calib'", "unknown topic",
                     "not in progress", "calibration differs", "already in progress", "has already ended"):
        assert expected in reasons
    assert [r["frame"] for r in kinds(events, "result", "s1")] == list(range(len(FRAMES)))
    summary = kinds(events, "summary")[0]
    assert summary["complete"] and summary["n_frames"] == len(FRAMES)


def test_every_result_carries_arcs_uncertainty_rows_and_timestamps(model: Path, tmp_path: Path) -> None:
    with loopback(model, tmp_path) as engine:
        send_pullback(engine.sender(), [(0, FRAMES[:12])], start(n_frames=12), fps=None)
        events = engine.wait_for_summaries(1, timeout_s=60)
    result = kinds(events, "result")[-1]
    assert len(result["prob_u8"]) == len(result["spread_u8"]) == 64
    assert 0.0 <= result["uncertainty"]["spread_mean"] <= result["uncertainty"]["spread_max"] <= 0.5
    t = result["t"]
    assert t["received_ns"] <= t["started_ns"] <= t["inferred_ns"] <= t["published_ns"]
    assert t["received_wall_ns"] <= t["published_wall_ns"]
    assert {"arcs", "total_arc_deg", "calcified"} <= set(result["provisional"])
    finals = [f["frame"] for e in kinds(events, "result") + kinds(events, "final") for f in e["final"]]
    assert finals == list(range(12))  # every frame becomes final exactly once, in order
    heartbeat = kinds(events, "heartbeat")[-1]
    assert heartbeat["backend"] == "torch" and "streaming-test-random" in heartbeat["model"]
    assert {"queue_depth", "frames_per_s", "frames_dropped"} <= set(heartbeat)


def test_concurrent_streams_are_kept_apart(model: Path, tmp_path: Path) -> None:
    other = make_frames(20, seed=9)
    with loopback(model, tmp_path) as engine:
        alone = engine.sender()
        send_pullback(alone, [(0, other)], start("solo", "pbX", 20), fps=None)
        solo = engine.wait_for_summaries(1, timeout_s=60)
        a, b = engine.sender(), engine.sender()
        a.send_multipart(p.encode_start(start("A", "pbA")))
        b.send_multipart(p.encode_start(start("B", "pbX")))
        for i in range(20):  # interleaved, frame by frame
            a.send_multipart(p.encode_frame("A", "pbA", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
            b.send_multipart(p.encode_frame("B", "pbX", i, i, 0.0, "cartesian", CALIB, other[i]), copy=False)
        a.send_multipart(p.encode_end(p.PullbackEnd("A", "pbA", 20)))
        b.send_multipart(p.encode_end(p.PullbackEnd("B", "pbX", 20)))
        events = engine.wait_for_summaries(3, timeout_s=60)
    # Stream B saw the same frames as the solo run: the same outputs despite stream A in between
    # (arcs exactly; the ensemble's floats to rounding, as batch sizes differ between the runs).
    inexact = ("t", "stream", "seq", "t_acq", "uncertainty", "prob_u8", "spread_u8")
    strip = lambda e: {k: v for k, v in e.items() if k not in inexact}  # noqa: E731
    mixed, alone_results = kinds(events, "result", "B"), kinds(solo, "result", "solo")
    assert [strip(e) for e in mixed] == [strip(e) for e in alone_results]
    for x, y in zip(mixed, alone_results, strict=True):
        assert x["uncertainty"] == pytest.approx(y["uncertainty"], abs=1e-5)
        assert np.abs(p.dequantize_unit(x["prob_u8"]) - p.dequantize_unit(y["prob_u8"])).max() <= 1 / 255 + 1e-6
    assert kinds(events, "summary", "B")[0]["summary"] == kinds(solo, "summary", "solo")[0]["summary"]
    assert [e["frame"] for e in kinds(events, "result", "A")] == list(range(20))


def test_sequence_gap_is_announced_and_filled(model: Path, tmp_path: Path) -> None:
    kept = [i for i in range(24) if i not in (10, 11, 12)]
    with loopback(model, tmp_path) as engine:
        sender = engine.sender()
        sender.send_multipart(p.encode_start(start()))
        for seq, i in enumerate(kept):
            sender.send_multipart(p.encode_frame("s1", "pb1", seq if i < 10 else seq + 3, i, 0.0, "cartesian", CALIB,
                                                 FRAMES[i]), copy=False)
        sender.send_multipart(p.encode_end(p.PullbackEnd("s1", "pb1", 24)))
        events = engine.wait_for_summaries(1, timeout_s=60)
    gaps = kinds(events, "gap")
    assert any(g.get("expected_seq") == 10 and g.get("seq") == 13 for g in gaps)
    assert any(g.get("frames") == [10, 11, 12] for g in gaps)
    assert [r["frame"] for r in kinds(events, "result")] == kept
    summary = kinds(events, "summary")[0]
    assert summary["n_frames"] == 24 and summary["filled_frames"] == [10, 11, 12]
    assert (summary["received"], summary["filled"], summary["complete"]) == (21, 3, False)
    journal = read_journal(Path(kinds(events, "started")[0]["journal"]))
    assert journal.filled == [10, 11, 12] and list(journal.frame_index) == list(range(24)) and journal.complete
    np.testing.assert_array_equal(journal.probability[10:13], np.tile(journal.probability[9], (3, 1)))


def test_new_pullback_id_ends_the_old_one(model: Path, tmp_path: Path) -> None:
    with loopback(model, tmp_path) as engine:
        sender = engine.sender()
        for i in range(8):  # no start message: the first frame opens the pullback
            sender.send_multipart(p.encode_frame("s1", "first", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
        send_pullback(sender, [(0, FRAMES[:6])], start(pullback="second"), fps=None, seq0=8)
        events = engine.wait_for_summaries(2, timeout_s=60)
    first, second = kinds(events, "summary")
    assert (first["pullback"], first["n_frames"], first["complete"]) == ("first", 8, False)
    assert "superseded" in first["reason"]
    assert (second["pullback"], second["n_frames"], second["complete"]) == ("second", 6, True)
    assert [r["frame"] for r in kinds(events, "result") if r["pullback"] == "second"] == list(range(6))


def test_overflow_gives_a_drop_notice_for_every_frame_not_processed(model: Path, tmp_path: Path) -> None:
    frames = make_frames(60, seed=4)
    with loopback(model, tmp_path, queue_size=2, max_batch=1) as engine:
        send_pullback(engine.sender(), [(0, frames)], start(n_frames=60), fps=None)
        events = engine.wait_for_summaries(1, timeout_s=120)
    results, drops = kinds(events, "result"), kinds(events, "drop")
    assert drops, "a 2-frame queue fed at full speed must overflow"
    assert sorted([r["frame"] for r in results] + [d["frame"] for d in drops]) == list(range(60))
    assert kinds(events, "summary")[0]["n_frames"] == 60


def test_oversized_message_is_refused_and_the_engine_stays_up(model: Path, tmp_path: Path) -> None:
    with loopback(model, tmp_path, max_frame_bytes=4096) as engine:
        big = engine.sender()
        big.send_multipart([b"frame", b"\x80", bytes(100_000)])  # over ZMQ_MAXMSGSIZE: dropped by ZeroMQ
        send_pullback(engine.sender(), [(0, FRAMES[:4])], start(n_frames=4), fps=None)
        events = engine.wait_for_summaries(1, timeout_s=60)
    assert [r["frame"] for r in kinds(events, "result")] == [0, 1, 2, 3]
    assert not kinds(events, "error")  # it never reached the decoder (which would have refused it with an error event)


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    """A ZeroMQ context whose sockets are closed (linger 0) and which is terminated after the test."""
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def serve(model: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """`ivuscal serve` in a subprocess on ephemeral loopback ports: (process, frames, results); killed at the end."""
    command = [sys.executable, "-m", "engine.cli", "serve", "--frames", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*",
               "--journal-dir", str(tmp_path / "j"), "--backend", "torch", "--model", str(model), "--heartbeat", "0.1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc, *serve_endpoints(proc)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()


@pytest.fixture
def listener(serve: tuple[subprocess.Popen, str, str], context: zmq.Context) -> Iterator[list[dict]]:
    """Events published by the `serve` engine, collected by a subscriber thread that is stopped after the test."""
    events: list[dict] = []
    live, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=subscribe, args=(serve[2], lambda e: (events.append(e), live.set()), stop),
                              kwargs={"timeout_s": 60, "context": context})
    thread.start()
    try:
        assert live.wait(60), "no heartbeat from the engine"
        yield events
    finally:
        stop.set()
        thread.join(timeout=10)


def send_burst_until_results(context: zmq.Context, endpoint: str, listener: list[dict], results: int) -> None:
    """Start pullback s1/pb1 and send all its frames back to back; return once `results` results were
    published (bounded: 30 s)."""
    sender = context.socket(zmq.PUSH)
    sender.connect(endpoint)
    sender.send_multipart(p.encode_start(start()))
    for i in range(len(FRAMES)):
        sender.send_multipart(p.encode_frame("s1", "pb1", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
    for _ in range(1500):
        if len(kinds(list(listener), "result")) >= results:
            return
        time.sleep(0.02)


def test_sigterm_right_after_a_burst_accounts_for_every_frame(
    serve: tuple[subprocess.Popen, str, str], listener: list[dict], context: zmq.Context, tmp_path: Path
) -> None:
    proc, frames_endpoint, _ = serve
    # a burst: the signal follows the first result, before the engine has caught up (the burst is in its buffers)
    send_burst_until_results(context, frames_endpoint, listener, 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    time.sleep(0.3)  # the last events in flight to the subscriber
    events = list(listener)
    summary = kinds(events, "summary")[0]
    assert (summary["stream"], summary["complete"], summary["reason"]) == ("s1", False, "engine shutdown")
    processed = [r["frame"] for r in kinds(events, "result")]
    dropped = [d["frame"] for d in kinds(events, "drop")]
    assert sorted(processed + dropped) == list(range(len(FRAMES)))  # every frame: a result or one drop notice
    finals = [f["frame"] for e in kinds(events, "result") + kinds(events, "final") for f in e["final"]]
    assert finals == list(range(summary["n_frames"]))
    assert len(read_journal(next((tmp_path / "j").iterdir())).probability) == summary["n_frames"]


def test_polar_streams_on_the_model_grid_are_processed_and_others_refused(model: Path, tmp_path: Path) -> None:
    polar = np.random.default_rng(2).random((6, 32, 64), dtype=np.float32)  # the test model's depth x A-lines
    with loopback(model, tmp_path) as engine:
        sender = engine.sender()
        wrong = p.PullbackStart("P", "bad", "polar", (32, 60), "float32", CALIB)
        sender.send_multipart(p.encode_start(wrong))
        sender.send_multipart(p.encode_frame("P", "bad", 0, 0, 0.0, "polar", CALIB, polar[0, :, :60]), copy=False)
        good = p.PullbackStart("P", "good", "polar", (32, 64), "float32", CALIB, 6)
        send_pullback(sender, [(0, polar)], good, fps=None, seq0=1)
        events = engine.wait_for_summaries(1, timeout_s=60)
    errors = kinds(events, "error", "P")
    assert len(errors) == 2 and all("polar frames must be 32 x 64" in e["reason"] for e in errors)
    assert [r["frame"] for r in kinds(events, "result", "P")] == list(range(6))
    assert kinds(events, "summary", "P")[0]["complete"]


def test_after_kill_9_mid_pullback_the_journal_rebuilds_every_published_frame(
    serve: tuple[subprocess.Popen, str, str], listener: list[dict], context: zmq.Context, tmp_path: Path
) -> None:
    from engine.cli import main
    from engine.quantify import total_arc_deg

    proc, frames_endpoint, _ = serve
    send_burst_until_results(context, frames_endpoint, listener, 20)  # well into the pullback
    proc.kill()  # SIGKILL: no shutdown code runs
    proc.wait(timeout=30)
    time.sleep(0.2)
    results = kinds(list(listener), "result")
    assert 20 <= len(results) and not kinds(list(listener), "summary")
    (journal,) = (tmp_path / "j").iterdir()
    assert main(["analyze", "--journal", str(journal), "--out", str(tmp_path / "rebuilt"), "--quiet"]) == 0
    with np.load(tmp_path / "rebuilt" / "calcium_map.npz") as report:
        calcium = report["calcium"]
    assert len(calcium) >= results[-1]["frame"] + 1  # every published frame is in the journal
    finals = [f for r in results for f in r["final"]]
    assert finals, "some frames became final before the kill"
    for final in finals:  # the rebuild reproduces what was published
        assert total_arc_deg(calcium[final["frame"]]) == final["total_arc_deg"]


def test_idle_pullback_is_closed_and_forgotten(model: Path, tmp_path: Path) -> None:
    with loopback(model, tmp_path, idle_timeout_s=0.5) as engine:
        sender = engine.sender()
        sender.send_multipart(p.encode_start(start("quiet", "pb")))
        for i in range(3):  # then the sender goes silent
            sender.send_multipart(p.encode_frame("quiet", "pb", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
        events = engine.wait_for_summaries(1, timeout_s=60)
        summary = kinds(events, "summary", "quiet")[0]
        assert (summary["n_frames"], summary["complete"], summary["reason"]) == (3, False, "idle")
        engine.drain()
        beat = engine.wait_for(lambda ev: bool(kinds(ev, "heartbeat")), timeout_s=10)
        assert kinds(beat, "heartbeat")[-1]["streams"] == []  # only open streams are listed
        assert kinds(beat, "heartbeat")[-1]["open_streams"] == 0


def test_the_stream_after_the_limit_is_refused_with_the_limit_named(model: Path, tmp_path: Path) -> None:
    with loopback(model, tmp_path, max_streams=2) as engine:
        sender = engine.sender()
        for name in ("one", "two", "three"):
            sender.send_multipart(p.encode_start(start(name, "pb")))
        (error,) = kinds(engine.wait_for(lambda ev: bool(kinds(ev, "error")), timeout_s=60), "error")
        assert error["stream"] == "three" and error["code"] == "stream_limit" and "--max-streams 2" in error["reason"]
        sender.send_multipart(p.encode_end(p.PullbackEnd("one", "pb")))
        sender.send_multipart(p.encode_start(start("three", "pb")))  # room again once one has ended
        engine.wait_for(lambda ev: bool(kinds(ev, "started", "three")), timeout_s=60)
        engine.drain()
        beat = kinds(engine.wait_for(lambda ev: bool(kinds(ev, "heartbeat")), timeout_s=10), "heartbeat")[-1]
        assert beat["streams"] == ["three", "two"] and beat["rejected"] == {"stream_limit": 1}


def test_frames_larger_than_the_configured_limit_are_refused(model: Path, tmp_path: Path) -> None:
    with loopback(model, tmp_path, max_frame_bytes=48 * 48 - 1) as engine:
        sender = engine.sender()
        sender.send_multipart(p.encode_frame("big", "pb", 0, 0, 0.0, "cartesian", CALIB, FRAMES[0]), copy=False)
        (error,) = kinds(engine.wait_for(lambda ev: bool(kinds(ev, "error")), timeout_s=60), "error")
    assert error["code"] == "malformed" and "exceeds 2303" in error["reason"]


def test_engine_is_a_context_manager_that_closes_its_sockets(model: Path, tmp_path: Path) -> None:
    server = loopback(model, tmp_path).server
    with server:
        server.bind()
        pull, pub = server._pull, server._pub
    assert pull is not None and pull.closed and pub is not None and pub.closed
    server.close()  # idempotent
