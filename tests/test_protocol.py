"""The streaming protocol (docs/protocol.md): round trips and every rejection path."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InputError
from engine.streaming import protocol as p

CALIB = p.Calibration((0.02, 0.025), (63.5, 64.0), 1 / 30, 0.5)


def frame_parts(pixels: np.ndarray, layout: str = "cartesian", **overrides) -> list:
    topic, header, data = p.encode_frame("cath-1", "pb.001", 7, 3, 1700000000.25, layout, CALIB, pixels)
    if overrides:
        fields = msgpack.unpackb(header)
        fields.update(overrides)
        header = msgpack.packb({k: v for k, v in fields.items() if v is not _DROP})
    return [topic, header, memoryview(data).cast("B")]


_DROP = object()


def test_frame_round_trip_keeps_every_field_and_views_the_buffer() -> None:
    pixels = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    parts = frame_parts(pixels)
    message = p.decode_inbound(parts)
    assert isinstance(message, p.FrameMessage)
    assert (message.stream, message.pullback, message.seq, message.frame_index) == ("cath-1", "pb.001", 7, 3)
    assert message.t_acq == 1700000000.25 and message.layout == "cartesian" and message.calibration == CALIB
    np.testing.assert_array_equal(message.pixels, pixels)
    assert np.shares_memory(message.pixels, np.asarray(parts[2]))  # a view over the received buffer
    assert message.start.shape == (12, 16) and message.start.dtype == "uint8"


def test_polar_float32_frame_round_trip() -> None:
    pixels = np.random.default_rng(0).random((32, 40), dtype=np.float32)
    message = p.decode_inbound(frame_parts(pixels, layout="polar"))
    np.testing.assert_array_equal(message.pixels, pixels)


def test_start_and_end_round_trip() -> None:
    start = p.PullbackStart("s", "pb", "cartesian", (64, 64), "uint8", CALIB, n_frames=120)
    end = p.PullbackEnd("s", "pb", n_frames=120)
    assert p.decode_inbound(p.encode_start(start)) == start
    assert p.decode_inbound(p.encode_end(end)) == end


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([], "empty message"),
        ([b"video", b""], "unknown topic"),
        ([b"frame", msgpack.packb({})], "must have 3 parts"),
        ([b"end", b"\xc1\xff\x00"], "not valid msgpack"),
        ([b"end", msgpack.packb([1, 2])], "must be a msgpack map"),
        ([b"end", msgpack.packb({"v": 99, "stream": "s", "pullback": "p"})], "unsupported protocol version 99"),
        ([b"end", msgpack.packb({"v": 1, "pullback": "p"})], "missing field 'stream'"),
        ([b"end", msgpack.packb({"v": 1, "stream": "a b", "pullback": "p"})], "field 'stream'"),
        ([b"end", b"\x00" * (p.MAX_HEADER_BYTES + 1)], "exceeds"),
    ],
)
def test_malformed_control_messages_are_rejected_with_a_reason(parts: list, reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=reason):
        p.decode_inbound(parts)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"shape": [12, 17]}, "pixel buffer has 192 bytes"),
        ({"shape": [12]}, "shape must be two integers"),
        ({"shape": [0, 16]}, "shape must be two integers"),
        ({"dtype": "float32"}, "not allowed for layout 'cartesian'"),
        ({"layout": "spiral"}, "layout must be one of"),
        ({"seq": -1}, "'seq' must be an integer"),
        ({"frame": 2.5}, "'frame' must be an integer"),
        ({"t_acq": float("nan")}, "t_acq must be a finite number"),
        ({"t_acq": _DROP}, "missing field 't_acq'"),
        ({"calib": {"pixel_spacing_mm": [0.02, 0.0], "center_rc": [1, 1], "frame_time_s": 0.03,
                    "pullback_rate_mm_s": 0.5}}, "positive"),
        ({"calib": {"pixel_spacing_mm": [0.02, 0.02], "center_rc": [1, float("inf")], "frame_time_s": 0.03,
                    "pullback_rate_mm_s": 0.5}}, "finite"),
        ({"calib": {"pixel_spacing_mm": [0.02, 0.02], "center_rc": [1, 1], "frame_time_s": 0.03}},
         "pullback_rate_mm_s"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(overrides: dict, reason: str) -> None:
    pixels = np.zeros((12, 16), dtype=np.uint8)
    with pytest.raises(p.ProtocolError, match=reason) as info:
        p.decode_inbound(frame_parts(pixels, **overrides))
    assert "cath-1" in str(info.value)  # the diagnostic names the stream


def test_non_finite_polar_pixels_are_rejected() -> None:
    pixels = np.zeros((8, 8), dtype=np.float32)
    pixels[3, 4] = np.nan
    with pytest.raises(p.ProtocolError, match="NaN or infinite"):
        p.decode_inbound(frame_parts(pixels, layout="polar"))


def test_protocol_error_is_an_input_error_and_peek_finds_the_stream() -> None:
    parts = frame_parts(np.zeros((4, 4), dtype=np.uint8), seq="x")
    with pytest.raises(InputError):
        p.decode_inbound(parts)
    assert p.peek_stream(parts) == "cath-1"
    assert p.peek_stream([b"frame", b"\xc1"]) is None


def test_events_round_trip_with_topic_by_kind_and_stream() -> None:
    parts = p.encode_event("result", "cath-1", {"frame": 4})
    assert parts[0] == b"result/cath-1"
    assert p.decode_event(parts) == {"v": 1, "kind": "result", "stream": "cath-1", "frame": 4}
    assert p.encode_event("heartbeat", None, {})[0] == b"heartbeat"
    with pytest.raises(p.ProtocolError):
        p.decode_event([b"result/x", msgpack.packb({"v": 1, "kind": "nonsense"})])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=400))
def test_quantized_probabilities_are_within_half_a_step(values: list[float]) -> None:
    row = np.asarray(values, dtype=np.float32)
    data = p.quantize_unit(row)
    assert len(data) == row.size
    assert np.abs(p.dequantize_unit(data) - row).max() <= 0.5 / 255 + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"start", b"frame", b"end", b"other"]),
    st.one_of(st.binary(max_size=200), st.dictionaries(
        st.text(max_size=8), st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=8), st.none()),
        max_size=8
    ).map(msgpack.packb)),
    st.binary(max_size=300),
)
def test_arbitrary_input_is_decoded_or_refused_with_a_protocol_error(topic: bytes, header: bytes,
                                                                     pixels: bytes) -> None:
    parts = [topic, header] if topic != b"frame" else [topic, header, pixels]
    try:
        p.decode_inbound(parts)
    except p.ProtocolError:
        pass  # the only failure a sender can cause


_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=8), st.none(), st.booleans(),
    st.lists(st.one_of(st.integers(-5, 5000), st.floats()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-5, 5), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["v", "stream", "pullback", "seq", "frame", "t_acq", "shape", "dtype", "layout", "calib"]),
       _VALUES)
def test_any_wrong_field_value_is_refused_with_a_protocol_error(key: str, value: object) -> None:
    topic, header, data = p.encode_frame("s", "p", 0, 0, 0.0, "cartesian", CALIB, np.zeros((4, 4), dtype=np.uint8))
    fields = msgpack.unpackb(header)
    fields[key] = value
    try:
        message = p.decode_inbound([topic, msgpack.packb(fields), data])
    except p.ProtocolError:
        return
    assert message.pixels.shape == (4, 4)  # accepted only when the value still describes these pixels
