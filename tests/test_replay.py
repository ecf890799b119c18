"""`ivuscal replay`: a DICOM pullback goes out as protocol messages, pixels and calibration only."""

from __future__ import annotations

import threading
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from engine.dicom import open_pullback
from engine.errors import InputError
from engine.streaming import protocol as p
from tools.replay import parse_fps, replay_file
from tools.simulator import PullbackConfig, SyntheticPatient, iter_pullback, write_pullback

N_FRAMES = 12


@pytest.fixture(scope="module")
def dicom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "smith_john_1970.dcm"  # file names can identify
    config = PullbackConfig(n_frames=N_FRAMES, image_size=128)
    return write_pullback(path, iter_pullback(config, seed=3), patient=SyntheticPatient(17, 99))


def capture(dicom: Path, **options: object) -> list[list[bytes]]:
    """Replay into a bound PULL socket and return every message received."""
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.bind("tcp://127.0.0.1:*")
    messages: list[list[bytes]] = []
    try:
        replay_file(dicom, pull.getsockopt_string(zmq.LAST_ENDPOINT), context=context, chunk_frames=5, **options)
        while pull.poll(2000):
            messages.append(pull.recv_multipart())
            if messages[-1][0] == b"end":
                break
    finally:
        pull.close(linger=0)
        context.term()
    return messages


def test_replay_sends_start_every_frame_in_order_and_end(dicom: Path) -> None:
    messages = capture(dicom, fps=None, stream="cath-7", pullback="pb-42")
    decoded = [p.decode_inbound(m) for m in messages]
    assert isinstance(decoded[0], p.PullbackStart) and isinstance(decoded[-1], p.PullbackEnd)
    frames = decoded[1:-1]
    assert [f.frame_index for f in frames] == list(range(N_FRAMES)) and [f.seq for f in frames] == list(range(N_FRAMES))
    assert decoded[-1].n_frames == N_FRAMES and decoded[0].n_frames == N_FRAMES
    with open_pullback(dicom) as source:
        original = np.concatenate([chunk for _, chunk in source.iter_chunks(64)])
        info = source.info
    np.testing.assert_array_equal(np.stack([f.pixels for f in frames]), original)
    assert frames[0].calibration.frame_time_s == pytest.approx(info.calibration.frame_time_s)
    assert frames[0].calibration.center_rc == pytest.approx(info.calibration.center_rc)


def test_no_patient_identifier_leaves_the_file(dicom: Path) -> None:
    patient = SyntheticPatient(17, 99)
    messages = capture(dicom, fps=None)
    headers = b"".join(m[1] for m in messages)
    for secret in (patient.name, patient.patient_id, "FAKEPATIENT", "FAKEID", dicom.stem):
        assert secret.encode() not in headers
    keys = set(msgpack.unpackb(messages[1][1]))
    assert keys == {"v", "stream", "pullback", "seq", "frame", "t_acq", "shape", "dtype", "layout", "calib"}


def test_loop_starts_a_new_pullback_each_time_until_stopped(dicom: Path) -> None:
    stop = threading.Event()
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.bind("tcp://127.0.0.1:*")
    sender = threading.Thread(target=replay_file, args=(dicom, pull.getsockopt_string(zmq.LAST_ENDPOINT)),
                              kwargs={"fps": None, "loop": True, "stop": stop, "context": context})
    sender.start()
    pullbacks: list[str] = []
    try:
        for _ in range(10 * (N_FRAMES + 2)):  # bounded
            if not pull.poll(5000):
                break
            message = p.decode_inbound(pull.recv_multipart())
            if isinstance(message, p.PullbackEnd):
                pullbacks.append(message.pullback)
                if len(pullbacks) == 2:
                    break
    finally:
        stop.set()
        sender.join(timeout=10)
        pull.close(linger=0)
        context.term()
    assert len(pullbacks) == 2 and pullbacks[0] != pullbacks[1]


def test_fps_option() -> None:
    assert parse_fps("max") is None and parse_fps("file") == 0.0 and parse_fps("12.5") == 12.5
    for bad in ("fast", "0", "-3", "nan"):
        with pytest.raises(InputError, match="--fps"):
            parse_fps(bad)
