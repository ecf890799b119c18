"""`ivuscal replay`: publish a recorded pullback as a live stream (docs/protocol.md).

Frames are read lazily in chunks from the DICOM file and pushed (PUSH, connected to the
engine's frames address) at the acquisition rate, a given rate, or as fast as possible. Only
pixels and calibration travel; patient identifiers never leave the file, and the pullback id is
random unless given.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
import numpy as np
import zmq

from engine.errors import InputError
from engine.streaming import protocol as p
from engine.streaming.auth import ClientKeys, client_keys
from engine.streaming.cli import client_key_options

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


def parse_fps(value: str) -> float | None:
    """'max' -> None (no pacing), 'file' -> 0 (the file's frame rate), else a positive rate."""
    if value == "max":
        return None
    if value == "file":
        return 0.0
    try:
        fps = float(value)
    except ValueError:
        raise InputError(f"--fps must be a number, 'file' or 'max', got {value!r}") from None
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"--fps must be positive, got {value!r}")
    return fps


class Pacer:
    """Sleeps so that frame `i` goes out at `start + i / fps` (no drift; no pacing when fps is None)."""

    def __init__(self, fps: float | None) -> None:
        self.period = None if fps is None else 1.0 / fps
        self.start = time.monotonic()

    def wait(self, i: int, stop: threading.Event) -> None:
        if self.period is not None:
            delay = self.start + i * self.period - time.monotonic()
            if delay > 0:
                stop.wait(delay)


def send_pullback(
    socket: zmq.Socket,
    chunks: Iterable[tuple[int, np.ndarray]],
    start: p.PullbackStart,
    fps: float | None,
    seq0: int = 0,
    stop: threading.Event | None = None,
) -> int:
    """Send start, the frames of `chunks` ((first index, uint8 (n, H, W)) pairs) paced, then end.

    Returns the next sequence number. Stops early (still sending `end`) when `stop` is set.
    """
    stop = stop or threading.Event()
    pacer = Pacer(fps)
    socket.send_multipart(p.encode_start(start))
    seq, sent = seq0, 0
    for first, frames in chunks:
        if stop.is_set():
            break
        for offset, frame in enumerate(frames):
            if stop.is_set():
                break
            pacer.wait(sent, stop)
            parts = p.encode_frame(start.stream, start.pullback, seq, first + offset, time.time(), start.layout,
                                   start.calibration, frame)
            socket.send_multipart(parts, copy=False)
            seq += 1
            sent += 1
    socket.send_multipart(p.encode_end(p.PullbackEnd(start.stream, start.pullback, sent)))
    return seq


def replay_file(
    path: Path,
    address: str = DEFAULT_ADDRESS,
    fps: float | None = 0.0,
    stream: str = "replay",
    pullback: str | None = None,
    loop: bool = False,
    chunk_frames: int = 32,
    stop: threading.Event | None = None,
    context: zmq.Context | None = None,
    keys: ClientKeys | None = None,
) -> int:
    """Replay a DICOM pullback to `address` (fps 0: the file's rate; None: as fast as possible).

    `keys`: CURVE client keys, for an engine run with `--auth`.
    """
    from engine.dicom import open_pullback  # pydicom only when replaying

    stop = stop or threading.Event()
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.PUSH)
    socket.setsockopt(zmq.LINGER, 10_000)  # deliver what is queued before closing
    if keys is not None:
        keys.apply(socket)
    socket.connect(address)
    seq = 0
    try:
        with open_pullback(path) as source:
            info = source.info
            rate = (1.0 / info.calibration.frame_time_s) if fps == 0.0 else fps
            calibration = p.Calibration(
                tuple(info.calibration.pixel_spacing_mm),
                tuple(info.calibration.center_rc),
                float(info.calibration.frame_time_s),
                float(info.calibration.pullback_rate_mm_s),
            )
            for _ in _repeat(loop, stop):
                start = p.PullbackStart(stream, pullback or f"pb-{uuid.uuid4().hex[:12]}", "cartesian",
                                        (info.rows, info.cols), "uint8", calibration, info.n_frames)
                seq = send_pullback(socket, source.iter_chunks(chunk_frames), start, rate, seq, stop)
    finally:
        socket.close()
    return seq


def _repeat(loop: bool, stop: threading.Event) -> Iterator[int]:
    n = 0
    while n == 0 or (loop and not stop.is_set()):
        yield n
        n += 1


@click.command(name="replay")
@click.argument("pullback_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "address", default=DEFAULT_ADDRESS, show_default=True,
              help="The engine's frames address (PUSH connects).")
@click.option("--fps", default="file", show_default=True, help="Frames per second, 'file' (acquisition rate) or 'max'.")
@click.option("--stream", default="replay", show_default=True, help="Stream id.")
@click.option("--pullback-id", default=None,
              help="Pullback id (default: random; a repeated --loop gets a new one each time).")
@click.option("--loop", is_flag=True, help="Replay again and again until interrupted.")
@click.option("--chunk", "chunk_frames", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Frames read from the file at a time.")
@client_key_options
def command(pullback_file: Path, address: str, fps: str, stream: str, pullback_id: str | None, loop: bool,
            chunk_frames: int, server_key: Path | None, client_key: Path | None) -> None:
    """Publish PULLBACK_FILE (DICOM) as a live frame stream: pixels and calibration only."""
    for name, value in (("--stream", stream), ("--pullback-id", pullback_id)):
        if value is not None and not p.valid_id(value):
            raise InputError(f"{name} must be 1-64 characters of [A-Za-z0-9_.:-], got {value!r}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # finish the current frame, then send `end`
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    keys = client_keys(server_key, client_key)
    sent = replay_file(pullback_file, address, parse_fps(fps), stream, pullback_id, loop, chunk_frames, stop, keys=keys)
    click.echo(f"ivuscal replay: sent {sent} frames to {address}", err=True)
