"""Bad input: each case is an InvalidPullbackError naming the file and the problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from engine.dicom import open_pullback
from engine.errors import InputError, InvalidPullbackError
from tests.dicom_factory import ivus_frames, write_pullback
from tests.test_dicom_reader import as_ultrasound, pydicom_file


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(tmp_path: Path, keep: float | int, jpeg: bool) -> Path:
    """The file cut to a fraction (float) or a number of bytes (int)."""
    data = write_pullback(tmp_path / "full.dcm", ivus_frames(20), jpeg=jpeg).read_bytes()
    return _write(tmp_path / "cut.dcm", data[: int(len(data) * keep) if isinstance(keep, float) else keep])


def _retagged_syntax(tmp_path: Path, uid: str, native: bool = False) -> Path:
    ds = pydicom.dcmread(write_pullback(tmp_path / "j.dcm", ivus_frames(4), jpeg=not native))
    ds.file_meta.TransferSyntaxUID = uid
    ds.save_as(tmp_path / "retagged.dcm")
    return tmp_path / "retagged.dcm"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing file": (lambda d: d / "nowhere.dcm", "file not found"),
    "zero bytes": (lambda d: _write(d / "empty.dcm", b""), "empty file"),
    "not dicom": (lambda d: _write(d / "notes.dcm", b"hello\n" * 50), "not a DICOM file"),
    "truncated native": (lambda d: _truncated(d, 0.6, jpeg=False), "shorter than declared"),
    "truncated jpeg": (lambda d: _truncated(d, 0.6, jpeg=True), "truncated"),
    "truncated in the header": (lambda d: _truncated(d, 400, jpeg=True), "truncated"),
    "truncated after the file meta": (lambda d: _truncated(d, 200, jpeg=False), "truncated"),
    "native pixel data shorter than declared": (
        lambda d: write_pullback(d / "p.dcm", ivus_frames(5), number_of_frames=9),
        "pixel data is shorter than declared",
    ),
    "jpeg frames fewer than declared": (
        lambda d: write_pullback(d / "p.dcm", ivus_frames(5), jpeg=True, number_of_frames=9),
        "5 compressed fragments for 9 frames",
    ),
    "zero frames": (lambda d: write_pullback(d / "p.dcm", ivus_frames(3), number_of_frames=0), "zero frames"),
    "single frame": (lambda d: write_pullback(d / "p.dcm", ivus_frames(1)), "single-frame image, not a pullback"),
    "CT": (lambda d: pydicom_file("CT_small.dcm"), "modality CT is not ultrasound"),
    "RTDOSE": (lambda d: pydicom_file("rtdose.dcm"), "modality RTDOSE is not ultrasound"),
    "secondary capture": (lambda d: pydicom_file("SC_rgb_rle.dcm"), "modality OT is not ultrasound"),
    "no pixel data": (lambda d: pydicom_file("rtplan.dcm"), "no pixel data"),
    "MPEG-4 video": (lambda d: _retagged_syntax(d, "1.2.840.10008.1.2.4.102"), "MPEG-4 AVC/H.264"),
    "unknown private syntax": (lambda d: _retagged_syntax(d, "1.2.3.4.5.6"),
                               "cannot be decoded by any installed plugin"),
    "deflated": (lambda d: _retagged_syntax(d, "1.2.840.10008.1.2.1.99", native=True),
                 "Deflated Explicit VR Little Endian"),
    "unsupported photometric": (
        lambda d: write_pullback(d / "p.dcm", ivus_frames(3), photometric="YBR_PARTIAL_420"),
        "photometric interpretation YBR_PARTIAL_420 is not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named_invalid_pullback_error(case: str, tmp_path: Path) -> None:
    make, expected = CASES[case]
    path = make(tmp_path)
    with pytest.raises(InvalidPullbackError) as raised:
        open_pullback(path)
    message = str(raised.value)
    assert isinstance(raised.value, InputError)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_single_frame_is_accepted_when_no_pullback_is_required(tmp_path: Path) -> None:
    path = write_pullback(tmp_path / "p.dcm", ivus_frames(1))
    with open_pullback(path, require_pullback=False) as pullback:
        assert pullback.info.n_frames == 1
        assert pullback.read_frames(0, 1).shape == (1, 64, 64)


def test_single_frame_rgb_relabelled_ultrasound_is_still_not_a_pullback(tmp_path: Path) -> None:
    path = as_ultrasound(pydicom_file("SC_rgb_rle.dcm"), tmp_path / "rle.dcm")
    with pytest.raises(InvalidPullbackError, match="single-frame"):
        open_pullback(path)


def test_corrupt_fragment_structure_is_reported(tmp_path: Path) -> None:
    path = write_pullback(tmp_path / "j.dcm", ivus_frames(4), jpeg=True)
    data = bytearray(path.read_bytes())
    second_item = data.index(b"\xfe\xff\x00\xe0", data.index(b"\xfe\xff\x00\xe0", data.index(b"\xe0\x7f\x10\x00")) + 8)
    data[second_item : second_item + 4] = b"\x11\x22\x33\x44"  # not an item tag
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidPullbackError, match="corrupt encapsulated pixel data|truncated"):
        open_pullback(path)


def test_decoding_failure_names_the_frame(tmp_path: Path) -> None:
    frames = np.zeros((3, 32, 32), np.uint8)
    path = write_pullback(tmp_path / "j.dcm", frames, jpeg=True)
    data = bytearray(path.read_bytes())
    soi = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xd8"]
    data[soi[2] : soi[2] + 40] = b"\x00" * 40  # destroy the third JPEG's header
    path.write_bytes(bytes(data))
    with open_pullback(path) as pullback:
        pullback.read_frames(0, 2)  # the intact frames still decode
        with pytest.raises(InvalidPullbackError, match=r"cannot decode frame 2") as raised:
            pullback.read_frames(0, 3)
    assert "\n" not in str(raised.value)
