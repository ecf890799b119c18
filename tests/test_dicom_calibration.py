"""Calibration: which header field wins, the documented defaults, and command-line overrides."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset

from engine.dicom import CalibrationOverrides, open_pullback
from engine.dicom.calibration import read_calibration
from engine.dicom.cli_options import calibration_options, overrides_from_options
from tests.dicom_factory import ivus_frames, us_region, write_pullback


def _header(**elements: object) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def test_everything_missing_gives_the_documented_defaults() -> None:
    cal = read_calibration(Dataset(), rows=500, cols=400)
    assert cal.frame_time_s == pytest.approx(1 / 30)
    assert cal.pullback_rate_mm_s == 0.5
    assert cal.pixel_spacing_mm == (0.02, 0.02)  # 10 mm across the larger side
    assert cal.center_rc == (249.5, 199.5)
    assert set(cal.defaulted) == {"frame_time_s", "pullback_rate_mm_s", "pixel_spacing_mm", "center_rc"}


@pytest.mark.parametrize(
    ("elements", "seconds", "source"),
    [
        ({"FrameTime": 40.0, "CineRate": 10}, 0.040, "FrameTime"),
        ({"FrameTimeVector": [0, 30, 34, 32]}, 0.032, "FrameTimeVector"),
        ({"CineRate": 25}, 0.040, "CineRate"),
        ({"FrameTime": 0.0, "CineRate": 20}, 0.050, "CineRate"),  # a zero frame time is no value
    ],
)
def test_frame_time_sources_in_order(elements: dict, seconds: float, source: str) -> None:
    cal = read_calibration(_header(**elements), 64, 64)
    assert cal.frame_time_s == pytest.approx(seconds)
    assert dict(cal.sources)["frame_time_s"] == source
    assert "frame_time_s" not in cal.defaulted


def test_pullback_rate_from_standard_then_boston_private_tag() -> None:
    assert read_calibration(_header(IVUSPullbackRate=1.0), 64, 64).pullback_rate_mm_s == 1.0
    boston = Dataset()
    boston.add_new(0x000B0010, "LO", "BSC_IVUS")
    boston.add_new(0x000B1001, "DS", "0.75")
    cal = read_calibration(boston, 64, 64)
    assert cal.pullback_rate_mm_s == 0.75 and dict(cal.sources)["pullback_rate_mm_s"] == "private (000B,1001)"


def test_pixel_spacing_prefers_pixel_spacing_then_centimetre_region() -> None:
    region = us_region(0.025, x0=10, y0=12)
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 100, 50
    cal = read_calibration(_header(PixelSpacing=[0.03, 0.04]), 64, 64)
    assert cal.pixel_spacing_mm == (0.03, 0.04)
    from_region = read_calibration(_header(SequenceOfUltrasoundRegions=[region]), 64, 64)
    assert from_region.pixel_spacing_mm == pytest.approx((0.025, 0.025))
    assert from_region.center_rc == (62.0, 110.0)  # the reference pixel is relative to the region corner
    assert from_region.defaulted == ("frame_time_s", "pullback_rate_mm_s")


def test_region_in_other_units_is_not_a_spatial_calibration() -> None:
    seconds = us_region(0.5, units=4)  # 4 = seconds (an M-mode or Doppler time axis)
    cal = read_calibration(_header(SequenceOfUltrasoundRegions=[seconds]), 64, 64)
    assert "pixel_spacing_mm" in cal.defaulted and "center_rc" in cal.defaulted


def test_overrides_beat_the_file(tmp_path: Path) -> None:
    path = write_pullback(tmp_path / "p.dcm", ivus_frames(10), frame_time_ms=20.0, pullback_rate_mm_s=1.0)
    overrides = CalibrationOverrides(frame_time_s=0.1, center_rc=(30.0, 31.0))
    with open_pullback(path, overrides=overrides) as pullback:
        info = pullback.info
    assert info.calibration.frame_time_s == 0.1 and info.calibration.center_rc == (30.0, 31.0)
    assert info.calibration.pullback_rate_mm_s == 1.0
    assert info.frame_rate_hz == pytest.approx(10.0)
    assert info.length_mm == pytest.approx(10 * 0.1 * 1.0)
    assert info.calibration.defaulted == ()


def test_defaults_are_logged_as_a_warning_naming_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_pullback(tmp_path / "p.dcm", ivus_frames(3), pullback_rate_mm_s=None, pixel_spacing_mm=None)
    with open_pullback(path) as pullback:
        assert set(pullback.info.calibration.defaulted) == {"pullback_rate_mm_s", "pixel_spacing_mm", "center_rc"}
    assert any(str(path) in r.message and "pullback_rate_mm_s" in r.message for r in caplog.records)


@click.command()
@calibration_options
def _probe(overrides: CalibrationOverrides | None) -> None:
    click.echo(repr(overrides))


def test_cli_options_build_overrides() -> None:
    runner = CliRunner()
    result = runner.invoke(_probe, ["--frame-rate", "25", "--pixel-spacing", "0.02", "--center", "100,120.5"])
    assert result.exit_code == 0, result.output
    expected = CalibrationOverrides(pixel_spacing_mm=(0.02, 0.02), center_rc=(100.0, 120.5), frame_time_s=0.04)
    assert result.output.strip() == repr(expected)
    assert runner.invoke(_probe, []).output.strip() == "None"
    assert runner.invoke(_probe, ["--pixel-spacing", "0.02,0.03"]).output.count("(0.02, 0.03)") == 1


@pytest.mark.parametrize(
    "args",
    [["--pixel-spacing", "0,0.02"], ["--center", "12"], ["--pullback-rate", "-1"],
     ["--frame-rate", "30", "--frame-time-ms", "33"]],
)
def test_cli_options_reject_impossible_values(args: list[str]) -> None:
    result = CliRunner().invoke(_probe, args)
    assert result.exit_code == 2


def test_overrides_from_options_with_nothing_is_none() -> None:
    assert overrides_from_options() is None
    assert overrides_from_options(frame_time_ms=50.0) == CalibrationOverrides(frame_time_s=0.05)
