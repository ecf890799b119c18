"""Frame integrity of the live engine, as a stateful property over real ZeroMQ sockets.

Hypothesis drives random message sequences (starts, frames with jumps, duplicates and reorders,
seq skips, changed calibration, pullback switches, ends, several streams interleaved, sent
back-to-back so that they share micro-batches) into one real engine, and compares every event it
publishes with `ProtocolModel`, a small reference model of docs/protocol.md written for this test.
Per stream, the events must come out exactly as the model says: no frame under the wrong
pullback, no invented frame, every refusal with its code, every frame final exactly once.

The engine runs polar uint8 frames through the streaming tests' small real ensemble (fast) with
small limits (3 open streams, 4 filled frames per message) so that every limit is exercised.
IVUSCAL_INTEGRITY_EXAMPLES sets the number of sequences (default 1500).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from test_streaming_fixtures import CALIB, SPEC, loopback, make_ensemble, make_frames

from engine.streaming import protocol as p
from engine.streaming.loopback import LoopbackEngine

MAX_STREAMS, MAX_GAP = 3, 4
EXAMPLES = int(os.environ.get("IVUSCAL_INTEGRITY_EXAMPLES", "1500"))
STREAMS, PULLBACKS = ("s0", "s1", "s2", "s3"), ("a", "b", "c")
OTHER_CALIB = p.Calibration(CALIB.pixel_spacing_mm, CALIB.center_rc, CALIB.frame_time_s, 2 * CALIB.pullback_rate_mm_s)
PIXELS = np.random.default_rng(5).integers(0, 255, size=(8, SPEC.n_depth, SPEC.n_alines), dtype=np.uint8)


# ---------------------------------------------------------------------------- the reference model


@dataclass
class _Open:
    pullback: str
    calib: p.Calibration
    expected: int = 0  # lowest index the next frame may have
    received: int = 0
    filled: int = 0


@dataclass
class _Stream:
    current: _Open | None = None
    expected_seq: int | None = None


@dataclass
class ProtocolModel:
    """What docs/protocol.md says the engine publishes, per stream, as comparable tuples."""

    events: dict[str, list[tuple]] = field(default_factory=dict)
    streams: dict[str, _Stream] = field(default_factory=dict)
    ended: set[tuple[str, str]] = field(default_factory=set)

    def emit(self, stream: str, *event: object) -> None:
        self.events.setdefault(stream, []).append(event)

    def open_streams(self) -> int:
        return sum(s.current is not None for s in self.streams.values())

    def _open(self, stream: str, pullback: str, calib: p.Calibration) -> bool:
        """Open (or switch to) `pullback`; False (after an error event) when refused."""
        state = self.streams.setdefault(stream, _Stream())
        if (stream, pullback) in self.ended:
            self.emit(stream, "error", "ended", pullback)
            return False
        if state.current is None and self.open_streams() >= MAX_STREAMS:
            self.emit(stream, "error", "stream_limit", pullback)
            return False
        if state.current is not None:
            self._close(stream, f"superseded by pullback {pullback!r}")
        state.current = _Open(pullback, calib)
        self.emit(stream, "started", pullback)
        return True

    def _close(self, stream: str, reason: str | None) -> None:
        state = self.streams[stream]
        current, state.current = state.current, None
        assert current is not None
        self.ended.add((stream, current.pullback))
        if current.expected:
            self.emit(stream, "final", current.pullback)
        complete = reason is None and current.filled == 0
        self.emit(
            stream, "summary", current.pullback, current.expected, current.received, current.filled, complete, reason
        )
        if reason is None:
            state.expected_seq = None  # the stream is freed with its pullback

    def start(self, stream: str, pullback: str) -> None:
        state = self.streams.setdefault(stream, _Stream())
        if state.current is not None and state.current.pullback == pullback:
            self.emit(stream, "error", "in_progress", pullback)
            return
        self._open(stream, pullback, CALIB)

    def frame(self, stream: str, pullback: str, seq: int, index: int, calib: p.Calibration) -> None:
        state = self.streams.setdefault(stream, _Stream())
        if state.current is None or state.current.pullback != pullback:
            if index > MAX_GAP:
                self.emit(stream, "error", "jump", pullback, index)
                return
            if not self._open(stream, pullback, calib):
                return
        current = state.current
        assert current is not None
        if state.expected_seq is not None and seq != state.expected_seq:
            self.emit(stream, "seq", pullback, state.expected_seq, seq)
        state.expected_seq = seq + 1
        if calib != current.calib:
            self.emit(stream, "error", "format", pullback, index)
        elif index < current.expected:
            self.emit(stream, "error", "out_of_order", pullback, index)
        elif index - current.expected > MAX_GAP:
            self.emit(stream, "error", "jump", pullback, index)
        else:
            if index > current.expected:  # before the first frame: repeated; later: held
                self.emit(stream, "gap", pullback, tuple(range(current.expected, index)))
                current.filled += index - current.expected
            self.emit(stream, "result", pullback, index)
            current.expected, current.received = index + 1, current.received + 1

    def end(self, stream: str, pullback: str, n_frames: int | None) -> None:
        state = self.streams.setdefault(stream, _Stream())
        current = state.current
        if current is None or current.pullback != pullback:
            self.emit(stream, "error", "ended" if (stream, pullback) in self.ended else "not_in_progress", pullback)
            return
        missing = (n_frames or 0) - current.expected
        if missing > 0 and current.received:
            if missing > MAX_GAP:
                self.emit(stream, "error", "jump", pullback)
            else:
                self.emit(stream, "gap", pullback, tuple(range(current.expected, n_frames)))
                current.filled += missing
                current.expected = n_frames
        self._close(stream, None)


def observed(events: list[dict]) -> dict[str, list[tuple]]:
    """The engine's events per stream, as the model's tuples."""
    out: dict[str, list[tuple]] = {}
    for e in events:
        kind, pb = e["kind"], e.get("pullback")
        if kind == "started":
            item: tuple = ("started", pb)
        elif kind == "result":
            item = ("result", pb, e["frame"])
        elif kind == "gap" and "frames" in e:
            item = ("gap", pb, tuple(e["frames"]))
        elif kind == "gap":
            item = ("seq", pb, e["expected_seq"], e["seq"])
        elif kind == "error":
            item = ("error", e["code"], pb) + (
                (e["frame"],) if e["code"] in ("jump", "format", "out_of_order") and "frame" in e else ()
            )
        elif kind == "final":
            item = ("final", pb)
        elif kind == "summary":
            item = ("summary", pb, e["n_frames"], e["received"], e["filled"], e["complete"], e["reason"])
        else:
            continue
        out.setdefault(e["stream"], []).append(item)
    return out


# ---------------------------------------------------------------------------- the machine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackEngine]:
    """One engine for every example (streams are named per example), small limits, no journal."""
    model = make_ensemble(tmp_path_factory.mktemp("model") / "ensemble.safetensors", make_frames(24, seed=3))
    tmp = tmp_path_factory.mktemp("integrity")
    with loopback(
        model,
        tmp,
        journal_dir=None,
        max_streams=MAX_STREAMS,
        max_gap=MAX_GAP,
        idle_timeout_s=3600.0,
        queue_size=100_000,
        max_batch=8,
    ) as running:
        yield running


def make_machine(engine: LoopbackEngine) -> type[RuleBasedStateMachine]:
    counter = itertools.count()
    sender = engine.sender()

    class EngineVersusModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = f"x{next(counter)}-"
            self.model = ProtocolModel()
            self.seq = dict.fromkeys(STREAMS, 0)

        def _stream(self, name: str) -> str:
            return self.prefix + name

        def _expected(self, name: str, pullback: str) -> int:
            state = self.model.streams.get(self._stream(name))
            current = state.current if state else None
            return current.expected if current is not None and current.pullback == pullback else 0

        @rule(name=st.sampled_from(STREAMS), pullback=st.sampled_from(PULLBACKS))
        def start(self, name: str, pullback: str) -> None:
            stream = self._stream(name)
            sender.send_multipart(
                p.encode_start(
                    p.PullbackStart(stream, pullback, "polar", (SPEC.n_depth, SPEC.n_alines), "uint8", CALIB)
                )
            )
            self.model.start(stream, pullback)

        @rule(
            name=st.sampled_from(STREAMS),
            pullback=st.sampled_from(PULLBACKS),
            delta=st.integers(-2, MAX_GAP + 2) | st.just(0) | st.just(0),
            seq_skip=st.sampled_from([0, 0, 0, 0, 1, 3]),
            calib=st.sampled_from([CALIB, CALIB, CALIB, OTHER_CALIB]),
            repeat=st.integers(1, 4),
        )
        def frames(
            self, name: str, pullback: str, delta: int, seq_skip: int, calib: p.Calibration, repeat: int
        ) -> None:
            """`repeat` frames back-to-back; the first at the next expected index + `delta`, then consecutive."""
            stream = self._stream(name)
            first = max(0, self._expected(name, pullback) + delta)
            self.seq[name] += seq_skip
            for index in range(first, first + repeat):
                seq = self.seq[name]
                self.seq[name] += 1
                pixels = PIXELS[(index + len(stream)) % len(PIXELS)]
                sender.send_multipart(
                    p.encode_frame(stream, pullback, seq, index, 0.0, "polar", calib, pixels), copy=False
                )
                self.model.frame(stream, pullback, seq, index, calib)

        @rule(
            name=st.sampled_from(STREAMS),
            pullback=st.sampled_from(PULLBACKS),
            extra=st.none() | st.integers(-1, MAX_GAP + 2),
        )
        def end(self, name: str, pullback: str, extra: int | None) -> None:
            stream = self._stream(name)
            n_frames = None if extra is None else max(0, self._expected(name, pullback) + extra)
            sender.send_multipart(p.encode_end(p.PullbackEnd(stream, pullback, n_frames)))
            self.model.end(stream, pullback, n_frames)

        def teardown(self) -> None:
            for stream, state in self.model.streams.items():  # end what is open, so the streams are freed
                if state.current is not None:
                    sender.send_multipart(p.encode_end(p.PullbackEnd(stream, state.current.pullback)))
                    self.model.end(stream, state.current.pullback, None)
            sentinel = self.prefix + "sentinel"
            sender.send_multipart(
                p.encode_start(p.PullbackStart(sentinel, "z", "polar", (SPEC.n_depth, SPEC.n_alines), "uint8", CALIB))
            )
            sender.send_multipart(p.encode_end(p.PullbackEnd(sentinel, "z")))
            engine.wait_for(
                lambda ev: any(e["kind"] == "summary" and e["stream"] == sentinel for e in ev), timeout_s=60
            )
            events = [
                e for e in engine.drain() if str(e.get("stream")).startswith(self.prefix) and e["stream"] != sentinel
            ]
            assert not [e for e in events if e["kind"] == "drop"], "the test's queue is large enough for no drops"
            assert observed(events) == {s: evs for s, evs in self.model.events.items() if evs}
            check_every_frame_final_once(events)

    return EngineVersusModel


def check_every_frame_final_once(events: list[dict]) -> None:
    """Per (stream, pullback): the final frames published are 0 .. n_frames - 1, each once, in order."""
    finals: dict[tuple[str, str], list[int]] = {}
    for e in events:
        for f in e.get("final", []) if e["kind"] in ("result", "gap", "final") else []:
            finals.setdefault((e["stream"], e["pullback"]), []).append(f["frame"])
    for e in events:
        if e["kind"] == "summary":
            assert finals.pop((e["stream"], e["pullback"]), []) == list(range(e["n_frames"])), e
    assert not finals, f"final frames of pullbacks without a summary: {finals}"


def test_engine_matches_the_protocol_model_for_random_message_sequences(engine: LoopbackEngine) -> None:
    machine = make_machine(engine)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=12,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_batched_duplicate_is_refused_not_renumbered(engine: LoopbackEngine) -> None:
    """The integrator's report: 0,1,2,3,4,2 sent back-to-back were published as frames 0-5."""
    sender = engine.sender()
    start = p.PullbackStart("dup", "pb", "polar", (SPEC.n_depth, SPEC.n_alines), "uint8", CALIB)
    sender.send_multipart(p.encode_start(start))
    for seq, index in enumerate([0, 1, 2, 3, 4, 2]):
        sender.send_multipart(p.encode_frame("dup", "pb", seq, index, 0.0, "polar", CALIB, PIXELS[index]), copy=False)
    sender.send_multipart(p.encode_end(p.PullbackEnd("dup", "pb")))
    events = [
        e
        for e in engine.wait_for(lambda ev: any(e["kind"] == "summary" and e["stream"] == "dup" for e in ev), 60)
        if e["stream"] == "dup"
    ]
    engine.drain()
    assert [e["frame"] for e in events if e["kind"] == "result"] == [0, 1, 2, 3, 4]
    (error,) = [e for e in events if e["kind"] == "error"]
    assert (error["code"], error["frame"], error["seq"]) == ("out_of_order", 2, 5)
    summary = next(e for e in events if e["kind"] == "summary")
    assert (summary["n_frames"], summary["received"], summary["complete"]) == (5, 5, True)


def test_pullback_switch_takes_effect_at_its_message(engine: LoopbackEngine) -> None:
    sender = engine.sender()
    for seq, (pullback, index) in enumerate([("one", 0), ("one", 1), ("one", 2), ("two", 0), ("two", 1), ("one", 3)]):
        sender.send_multipart(
            p.encode_frame("sw", pullback, seq, index, 0.0, "polar", CALIB, PIXELS[index]), copy=False
        )
    sender.send_multipart(p.encode_end(p.PullbackEnd("sw", "two")))
    events = [
        e
        for e in engine.wait_for(lambda ev: sum(e["kind"] == "summary" and e["stream"] == "sw" for e in ev) == 2, 60)
        if e["stream"] == "sw"
    ]
    engine.drain()
    assert [(e["pullback"], e["frame"]) for e in events if e["kind"] == "result"] == [
        ("one", 0),
        ("one", 1),
        ("one", 2),
        ("two", 0),
        ("two", 1),
    ]
    first, second = [e for e in events if e["kind"] == "summary"]
    assert (first["pullback"], first["n_frames"], first["complete"]) == ("one", 3, False) and "superseded" in first[
        "reason"
    ]
    assert (second["pullback"], second["n_frames"], second["complete"]) == ("two", 2, True)
    (late,) = [e for e in events if e["kind"] == "error"]
    assert (late["code"], late["pullback"], late["frame"]) == ("ended", "one", 3)


def test_frames_before_the_first_received_are_filled_from_it_and_counted(engine: LoopbackEngine) -> None:
    sender = engine.sender()
    for seq, index in enumerate([3, 4, 5]):
        sender.send_multipart(p.encode_frame("lead", "pb", seq, index, 0.0, "polar", CALIB, PIXELS[index]), copy=False)
    sender.send_multipart(p.encode_end(p.PullbackEnd("lead", "pb")))
    events = [
        e
        for e in engine.wait_for(lambda ev: any(e["kind"] == "summary" and e["stream"] == "lead" for e in ev), 60)
        if e["stream"] == "lead"
    ]
    engine.drain()
    (gap,) = [e for e in events if e["kind"] == "gap"]
    assert gap["frames"] == [0, 1, 2] and "repeated the first received frame" in gap["filled"]
    summary = next(e for e in events if e["kind"] == "summary")
    assert (summary["n_frames"], summary["received"], summary["filled"], summary["complete"]) == (6, 3, 3, False)


def test_a_huge_jump_is_refused_at_once(engine: LoopbackEngine) -> None:
    sender = engine.sender()
    sender.send_multipart(p.encode_frame("far", "pb", 0, 0, 0.0, "polar", CALIB, PIXELS[0]), copy=False)
    sender.send_multipart(p.encode_frame("far", "pb", 1, 20_000_000, 0.0, "polar", CALIB, PIXELS[1]), copy=False)
    sender.send_multipart(p.encode_frame("far", "pb", 2, 1, 0.0, "polar", CALIB, PIXELS[1]), copy=False)
    sender.send_multipart(p.encode_end(p.PullbackEnd("far", "pb", 10_000_000)))
    events = [
        e
        for e in engine.wait_for(lambda ev: any(e["kind"] == "summary" and e["stream"] == "far" for e in ev), 60)
        if e["stream"] == "far"
    ]
    engine.drain()
    assert [e["code"] for e in events if e["kind"] == "error"] == ["jump", "jump"]
    assert [e["frame"] for e in events if e["kind"] == "result"] == [0, 1]
    summary = next(e for e in events if e["kind"] == "summary")
    assert (summary["n_frames"], summary["filled"]) == (2, 0)
