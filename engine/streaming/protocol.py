"""The ivuscal streaming protocol, version 1 (docs/protocol.md): encode, decode and validate.

Pure functions, no sockets. Inbound messages are ZeroMQ multipart messages
`[topic, msgpack header]` (`start`, `end`) or `[topic, msgpack header, raw pixels]` (`frame`);
decoding validates every field and raises `ProtocolError` naming the stream and the problem.
Outbound events are `[topic, msgpack body]` with topic `<kind>/<stream id>` (`heartbeat` alone).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from engine.errors import InputError

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_SIDE = 4096  # largest accepted frame dimension (rows, cols, depth or A-lines)
MAX_FRAME_BYTES = 64 * 1024 * 1024  # ceiling on one frame's pixels; the engine's limit: ServerConfig.max_frame_bytes
LAYOUT_DTYPES = {"cartesian": ("uint8",), "polar": ("float32", "uint8")}
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

TOPIC_START, TOPIC_FRAME, TOPIC_END = b"start", b"frame", b"end"
EVENT_KINDS = ("started", "result", "final", "summary", "drop", "gap", "error", "heartbeat", "preview")


class ProtocolError(InputError):
    """A message that breaks the protocol; `source` names the stream when it is known."""


@dataclass(frozen=True)
class Calibration:
    """Geometry and timing of a pullback, as carried in every start and frame header."""

    pixel_spacing_mm: tuple[float, float]  # (row, col) for cartesian; (depth, unused) for polar
    center_rc: tuple[float, float]  # catheter centre (row, col) in pixels; ignored for polar
    frame_time_s: float
    pullback_rate_mm_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "pixel_spacing_mm": list(self.pixel_spacing_mm),
            "center_rc": list(self.center_rc),
            "frame_time_s": self.frame_time_s,
            "pullback_rate_mm_s": self.pullback_rate_mm_s,
        }


@dataclass(frozen=True)
class PullbackStart:
    """Control message: a pullback begins on a stream, with its frame format and calibration."""

    stream: str
    pullback: str
    layout: str
    shape: tuple[int, int]
    dtype: str
    calibration: Calibration
    n_frames: int | None = None


@dataclass(frozen=True)
class PullbackEnd:
    """Control message: the pullback is complete; flush and summarise."""

    stream: str
    pullback: str
    n_frames: int | None = None


@dataclass(frozen=True)
class FrameMessage:
    """One frame: header fields plus the pixels as a read-only array over the received buffer."""

    stream: str
    pullback: str
    seq: int
    frame_index: int
    t_acq: float
    layout: str
    calibration: Calibration
    pixels: np.ndarray

    @property
    def start(self) -> PullbackStart:
        """The start message this frame implies (used when a frame opens a pullback)."""
        shape = (int(self.pixels.shape[0]), int(self.pixels.shape[1]))
        return PullbackStart(self.stream, self.pullback, self.layout, shape, str(self.pixels.dtype), self.calibration)


Inbound = PullbackStart | FrameMessage | PullbackEnd


# ---------------------------------------------------------------------------- encode (senders)


def _plain(obj: Any) -> Any:
    """msgpack fallback for NumPy scalars and arrays found in summaries."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot encode {type(obj).__name__} in a message")


def _pack(obj: dict[str, Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, default=_plain)


def encode_start(start: PullbackStart) -> list[bytes]:
    """`start` control message."""
    header = {
        "v": PROTOCOL_VERSION,
        "stream": start.stream,
        "pullback": start.pullback,
        "layout": start.layout,
        "shape": list(start.shape),
        "dtype": start.dtype,
        "calib": start.calibration.to_dict(),
        "n_frames": start.n_frames,
    }
    return [TOPIC_START, _pack(header)]


def encode_end(end: PullbackEnd) -> list[bytes]:
    """`end` control message."""
    return [TOPIC_END,
            _pack({"v": PROTOCOL_VERSION, "stream": end.stream, "pullback": end.pullback, "n_frames": end.n_frames})]


def encode_frame(
    stream: str, pullback: str, seq: int, frame_index: int, t_acq: float, layout: str, calibration: Calibration,
    pixels: np.ndarray,
) -> list[Any]:
    """`frame` message; the pixels travel as the array's own buffer (send with copy=False)."""
    pixels = np.ascontiguousarray(pixels)
    header = {
        "v": PROTOCOL_VERSION,
        "stream": stream,
        "pullback": pullback,
        "seq": int(seq),
        "frame": int(frame_index),
        "t_acq": float(t_acq),
        "shape": list(pixels.shape),
        "dtype": str(pixels.dtype),
        "layout": layout,
        "calib": calibration.to_dict(),
    }
    return [TOPIC_FRAME, _pack(header), pixels]


# ---------------------------------------------------------------------------- decode (engine)


def _buffer(part: Any) -> memoryview:
    """A memoryview over a message part (bytes, zmq.Frame or anything with the buffer protocol)."""
    buffer = getattr(part, "buffer", None)
    return buffer if buffer is not None else memoryview(part)


def _unpack_header(part: Any) -> dict[str, Any]:
    view = _buffer(part)
    if view.nbytes > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {view.nbytes} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(view, raw=False, strict_map_key=True, max_str_len=4096, max_bin_len=4096)
    except Exception as error:  # msgpack raises several unrelated types on corrupt input
        raise ProtocolError(f"header is not valid msgpack ({type(error).__name__}: {error})") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a msgpack map, got {type(header).__name__}")
    return header


def _field(header: dict[str, Any], name: str, source: str | None) -> Any:
    if name not in header:
        raise ProtocolError(f"missing field {name!r}", source=source)
    return header[name]


def _int(header: dict[str, Any], name: str, source: str | None, minimum: int = 0) -> int:
    value = _field(header, name, source)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ProtocolError(f"field {name!r} must be an integer >= {minimum}, got {value!r}", source=source)
    return value


def _optional_int(header: dict[str, Any], name: str, source: str | None) -> int | None:
    return None if header.get(name) is None else _int(header, name, source)


def _finite(value: Any, name: str, source: str | None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(f"{name} must be a finite number, got {value!r}", source=source)
    if positive and value <= 0:
        raise ProtocolError(f"{name} must be positive, got {value!r}", source=source)
    return float(value)


def _pair(value: Any, name: str, source: str | None, positive: bool = False) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ProtocolError(f"{name} must be a pair of numbers, got {value!r}", source=source)
    return (_finite(value[0], name, source, positive), _finite(value[1], name, source, positive))


def valid_id(value: object) -> bool:
    """True for a usable stream or pullback id: 1-64 characters of [A-Za-z0-9_.:-]."""
    return isinstance(value, str) and bool(_ID.match(value))


def _ident(header: dict[str, Any], name: str, source: str | None) -> str:
    value = _field(header, name, source)
    if not isinstance(value, str) or not _ID.match(value):
        raise ProtocolError(f"field {name!r} must be 1-64 characters of [A-Za-z0-9_.:-], got {value!r}", source=source)
    return value


def _calibration(header: dict[str, Any], source: str | None) -> Calibration:
    calib = _field(header, "calib", source)
    if not isinstance(calib, dict):
        raise ProtocolError("field 'calib' must be a map", source=source)
    for key in ("pixel_spacing_mm", "center_rc", "frame_time_s", "pullback_rate_mm_s"):
        _field(calib, key, source)
    return Calibration(
        pixel_spacing_mm=_pair(calib["pixel_spacing_mm"], "calib.pixel_spacing_mm", source, positive=True),
        center_rc=_pair(calib["center_rc"], "calib.center_rc", source),
        frame_time_s=_finite(calib["frame_time_s"], "calib.frame_time_s", source, positive=True),
        pullback_rate_mm_s=_finite(calib["pullback_rate_mm_s"], "calib.pullback_rate_mm_s", source, positive=True),
    )


def _format(header: dict[str, Any], source: str | None) -> tuple[str, tuple[int, int], str]:
    layout = _field(header, "layout", source)
    if not isinstance(layout, str) or layout not in LAYOUT_DTYPES:
        raise ProtocolError(f"layout must be one of {sorted(LAYOUT_DTYPES)}, got {layout!r}", source=source)
    dtype = _field(header, "dtype", source)
    if not isinstance(dtype, str) or dtype not in LAYOUT_DTYPES[layout]:
        raise ProtocolError(f"dtype {dtype!r} is not allowed for layout {layout!r} (allowed: {LAYOUT_DTYPES[layout]})",
                            source=source)
    shape = _field(header, "shape", source)
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_SIDE for n in shape)
    ):
        raise ProtocolError(f"shape must be two integers in [1, {MAX_SIDE}], got {shape!r}", source=source)
    return layout, (shape[0], shape[1]), dtype


def _header_common(header: dict[str, Any]) -> tuple[str, str, str]:
    """Version check, then (stream, pullback, source label)."""
    version = header.get("v")
    stream_hint = header.get("stream") if isinstance(header.get("stream"), str) else None
    source = f"stream {stream_hint[:64]!r}" if stream_hint else None
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r} (this engine speaks {PROTOCOL_VERSION})",
                            source=source)
    stream = _ident(header, "stream", source)
    return stream, _ident(header, "pullback", source), source or f"stream {stream!r}"


def _pixels(part: Any, shape: tuple[int, int], dtype: str, source: str, max_frame_bytes: int) -> np.ndarray:
    view = _buffer(part)
    expected = shape[0] * shape[1] * np.dtype(dtype).itemsize
    if expected > max_frame_bytes:
        raise ProtocolError(f"frame of {expected} bytes exceeds {max_frame_bytes}", source=source)
    if view.nbytes != expected:
        raise ProtocolError(f"pixel buffer has {view.nbytes} bytes, shape {list(shape)} {dtype} needs {expected}",
                            source=source)
    pixels = np.frombuffer(view, dtype=dtype).reshape(shape)
    if pixels.dtype == np.float32 and not np.isfinite(pixels).all():
        raise ProtocolError("pixels contain NaN or infinite values", source=source)
    return pixels


def decode_inbound(parts: list[Any], max_frame_bytes: int = MAX_FRAME_BYTES) -> Inbound:
    """Decode and validate one inbound multipart message; raises `ProtocolError`."""
    if not parts:
        raise ProtocolError("empty message")
    topic = bytes(_buffer(parts[0]))
    expected_parts = {TOPIC_START: 2, TOPIC_END: 2, TOPIC_FRAME: 3}
    if topic not in expected_parts:
        raise ProtocolError(f"unknown topic {topic[:32]!r} (expected start, frame or end)")
    if len(parts) != expected_parts[topic]:
        raise ProtocolError(f"{topic.decode()} message must have {expected_parts[topic]} parts, got {len(parts)}")
    header = _unpack_header(parts[1])
    stream, pullback, source = _header_common(header)
    if topic == TOPIC_END:
        return PullbackEnd(stream, pullback, _optional_int(header, "n_frames", source))
    layout, shape, dtype = _format(header, source)
    calibration = _calibration(header, source)
    if topic == TOPIC_START:
        return PullbackStart(stream, pullback, layout, shape, dtype, calibration,
                             _optional_int(header, "n_frames", source))
    return FrameMessage(
        stream=stream,
        pullback=pullback,
        seq=_int(header, "seq", source),
        frame_index=_int(header, "frame", source),
        t_acq=_finite(_field(header, "t_acq", source), "t_acq", source),
        layout=layout,
        calibration=calibration,
        pixels=_pixels(parts[2], shape, dtype, source, max_frame_bytes),
    )


def peek_stream(parts: list[Any]) -> str | None:
    """The stream id of a message that failed to decode, if it can be read at all (for diagnostics)."""
    try:
        readable = len(parts) > 1 and _buffer(parts[1]).nbytes <= MAX_HEADER_BYTES
        header = msgpack.unpackb(_buffer(parts[1]), raw=False) if readable else None
    except Exception:  # the header is what was broken
        return None
    stream = header.get("stream") if isinstance(header, dict) else None
    return stream if isinstance(stream, str) and _ID.match(stream) else None


# ---------------------------------------------------------------------------- outbound events


def encode_event(kind: str, stream: str | None, body: dict[str, Any]) -> list[bytes]:
    """An engine event: topic `<kind>/<stream>` (or `<kind>`), body a msgpack map with `v` and `kind`."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    topic = f"{kind}/{stream}" if stream else kind
    return [topic.encode(), _pack({"v": PROTOCOL_VERSION, "kind": kind, "stream": stream, **body})]


def decode_event(parts: list[Any]) -> dict[str, Any]:
    """Decode an engine event (for listeners and tests); raises `ProtocolError`."""
    if len(parts) != 2:
        raise ProtocolError(f"an event has 2 parts, got {len(parts)}")
    body = _unpack_event_body(parts[1])
    if body.get("v") != PROTOCOL_VERSION or body.get("kind") not in EVENT_KINDS:
        raise ProtocolError(f"unsupported event (version {body.get('v')!r}, kind {body.get('kind')!r})")
    return body


def _unpack_event_body(part: Any) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(_buffer(part), raw=False)
    except Exception as error:
        raise ProtocolError(f"event is not valid msgpack ({error})") from None
    if not isinstance(body, dict):
        raise ProtocolError("event body must be a msgpack map")
    return body


# ---------------------------------------------------------------------------- compact payloads


def arcs_payload(arcs: list[Any]) -> list[list[float]]:
    """Arcs (objects with start_deg, end_deg, extent_deg) as `[[start, end, extent], ...]` degrees."""
    return [[round(a.start_deg, 4), round(a.end_deg, 4), round(a.extent_deg, 4)] for a in arcs]


def quantize_unit(row: np.ndarray) -> bytes:
    """Values in [0, 1] as uint8 bytes `round(v * 255)` (one byte per A-line)."""
    return np.rint(np.clip(np.asarray(row, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8).tobytes()


def dequantize_unit(data: bytes) -> np.ndarray:
    """Inverse of `quantize_unit` (to within 1/510)."""
    return np.frombuffer(data, dtype=np.uint8).astype(np.float32) / 255.0
