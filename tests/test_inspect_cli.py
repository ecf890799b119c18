"""`ivuscal inspect`: the description, JSON, overrides, no identifiers, and exit status 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, ivus_frames, us_region, write_pullback
from tests.test_dicom_reader import pydicom_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pullback(tmp_path: Path) -> Path:
    return write_pullback(
        tmp_path / "run.dcm",
        ivus_frames(40, 80, 96),
        frame_time_ms=33.3,
        pullback_rate_mm_s=1.0,
        pixel_spacing_mm=None,
        region=us_region(0.025, x0=40, y0=41),
        manufacturer="Acme Imaging",
        model="IV-9",
    )


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_text_description(pullback: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["inspect", str(pullback)], capsys)
    assert status == 0
    assert "frames:           40" in out
    assert "size:             80 x 96 pixels" in out
    assert "frame rate:       30.03 frames/s\n" in out
    assert "pullback rate:    1.000 mm/s\n" in out
    assert "pullback length:  1.33 mm" in out  # 40 frames x 33.3 ms x 1 mm/s
    assert "pixel spacing:    0.02500, 0.02500 mm" in out
    assert "catheter centre:  41.0, 40.0 pixels (row, col)\n" in out
    assert "Explicit VR Little Endian (1.2.840.10008.1.2.1)" in out
    assert "vendor:           Acme Imaging IV-9" in out
    assert "defaulted:        none" in out


def test_json_description_and_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pullback(tmp_path / "bare.dcm", ivus_frames(12, 50, 50), frame_time_ms=None, pullback_rate_mm_s=None)
    status, out, _ = _run(["inspect", str(path), "--json"], capsys)
    assert status == 0
    data = json.loads(out)
    assert data["n_frames"] == 12 and (data["rows"], data["cols"]) == (50, 50)
    assert data["frame_rate_hz"] == pytest.approx(30.0)
    assert data["length_mm"] == pytest.approx(12 / 30 * 0.5)
    assert data["pixel_spacing_mm"] == [0.02, 0.02]
    assert data["center_rc"] == [24.5, 24.5]
    assert set(data["defaulted"]) == {"frame_time_s", "pullback_rate_mm_s", "center_rc"}
    assert data["transfer_syntax_name"] == "Explicit VR Little Endian" and data["photometric"] == "MONOCHROME2"


def test_text_marks_defaulted_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pullback(tmp_path / "bare.dcm", ivus_frames(5), pullback_rate_mm_s=None)
    status, out, _ = _run(["inspect", str(path)], capsys)
    assert status == 0
    assert "pullback rate:    0.500 mm/s (default)" in out
    assert "frame rate:       30.03 frames/s\n" in out  # from FrameTime, not marked
    assert "defaulted:        center_rc, pullback_rate_mm_s" in out


def test_overrides_on_the_command_line(pullback: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["inspect", str(pullback), "--json", "--frame-rate", "20", "--pullback-rate", "0.5", "--pixel-spacing",
            "0.01,0.02"]
    status, out, _ = _run(args, capsys)
    data = json.loads(out)
    assert status == 0
    assert data["frame_time_s"] == pytest.approx(0.05) and data["length_mm"] == pytest.approx(40 * 0.05 * 0.5)
    assert data["pixel_spacing_mm"] == [0.01, 0.02]
    assert data["sources"]["frame_time_s"] == "override" and data["sources"]["center_rc"] != "override"


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_never_prints_patient_identifiers(pullback: Path, json_flag: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(["inspect", str(pullback), *json_flag], capsys)
    assert status == 0
    for secret in (PATIENT_NAME, PATIENT_ID, "Zzsecret", "Patientname"):
        assert secret not in out and secret not in err


def test_describes_a_real_single_frame_vendor_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["inspect", str(pydicom_file("examples_palette.dcm")), "--json"], capsys)
    data = json.loads(out)
    assert status == 0
    assert data["n_frames"] == 1 and data["photometric"] == "PALETTE COLOR"
    assert data["manufacturer"] == "Philips Medical Systems"
    assert data["sources"]["pixel_spacing_mm"] == "ultrasound region (cm)"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "absent.dcm", "file not found"),
        (lambda d: d, "not a regular file"),
        (lambda d: (d / "empty.dcm").touch() or d / "empty.dcm", "empty file (0 bytes)"),
        (lambda d: pydicom_file("rtdose.dcm"), "modality RTDOSE is not ultrasound"),
    ],
)
def test_bad_input_exits_2_with_one_line(make, problem: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = make(tmp_path)
    status, out, err = _run(["inspect", str(path)], capsys)
    assert status == 2 and out == ""
    assert err == f"ivuscal: error: {path}: {problem}" + err.split(problem, 1)[1]
    assert err.count("\n") == 1


def test_process_exit_status_and_stderr_for_a_truncated_file(pullback: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(pullback.read_bytes()[:-5000])
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "inspect", str(cut)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ivuscal: error: {cut}: pixel data is shorter than declared")
    assert "Traceback" not in result.stderr
