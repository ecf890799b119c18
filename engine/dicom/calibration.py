"""Calibration of a pullback: frame time, pullback speed, pixel spacing, catheter centre.

Each value comes from the first of: a command-line override, the DICOM header, a documented
default (docs/dicom.md). Defaulted values are named in `Calibration.defaulted` so that reports
can say which numbers were guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from pydicom.dataset import Dataset

DEFAULT_FRAME_TIME_S = 1.0 / 30.0
DEFAULT_PULLBACK_RATE_MM_S = 0.5
DEFAULT_FIELD_OF_VIEW_MM = 10.0
REGION_UNITS_CM = 3  # DICOM (0018,6024/6026) enumerated value for centimetres
BOSTON_PULLBACK_TAG = 0x000B1001  # Boston Scientific private pullback speed (mm/s)


@dataclass(frozen=True)
class Calibration:
    """Physical calibration of a pullback.

    `pixel_spacing_mm` is (row spacing, column spacing); `center_rc` is the catheter centre
    (row, col) in pixels; `defaulted` names the fields that fell back to defaults and `sources`
    says where each field came from, as (field, source) pairs.
    """

    pixel_spacing_mm: tuple[float, float]
    center_rc: tuple[float, float]
    frame_time_s: float
    pullback_rate_mm_s: float
    defaulted: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CalibrationOverrides:
    """Values given by the user that replace whatever the file says; None keeps the file's value."""

    pixel_spacing_mm: tuple[float, float] | None = None
    center_rc: tuple[float, float] | None = None
    frame_time_s: float | None = None
    pullback_rate_mm_s: float | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def _positive(value: Any) -> float | None:
    """`value` as a positive finite float, or None when missing or meaningless."""
    try:
        number = float(value.decode("ascii").strip("\x00 ") if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError, AttributeError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _frame_time(ds: Dataset) -> tuple[float, str] | None:
    if (ms := _positive(ds.get("FrameTime"))) is not None:
        return ms / 1000.0, "FrameTime"
    vector = ds.get("FrameTimeVector")
    if vector is not None:
        values = [v for v in (_positive(x) for x in list(vector)[1:]) if v is not None]  # entry 0 is 0
        if values:
            return sum(values) / len(values) / 1000.0, "FrameTimeVector"
    if (rate := _positive(ds.get("CineRate"))) is not None:
        return 1.0 / rate, "CineRate"
    return None


def _pullback_rate(ds: Dataset) -> tuple[float, str] | None:
    if (rate := _positive(ds.get("IVUSPullbackRate"))) is not None:
        return rate, "IVUSPullbackRate"
    private = ds.get(BOSTON_PULLBACK_TAG)
    if private is not None and (rate := _positive(private.value)) is not None:
        return rate, "private (000B,1001)"
    return None


def _spatial_region(ds: Dataset) -> Dataset | None:
    """The first ultrasound region calibrated in centimetres along both axes, if any."""
    for region in ds.get("SequenceOfUltrasoundRegions", []):
        if (
            region.get("PhysicalUnitsXDirection") == REGION_UNITS_CM
            and region.get("PhysicalUnitsYDirection") == REGION_UNITS_CM
            and _positive(region.get("PhysicalDeltaX")) is not None
            and _positive(region.get("PhysicalDeltaY")) is not None
        ):
            return region
    return None


def _pixel_spacing(ds: Dataset, region: Dataset | None) -> tuple[tuple[float, float], str] | None:
    spacing = ds.get("PixelSpacing")
    if spacing is not None and len(spacing) == 2:
        row, col = _positive(spacing[0]), _positive(spacing[1])
        if row is not None and col is not None:
            return (row, col), "PixelSpacing"
    if region is not None:
        return (float(region.PhysicalDeltaY) * 10.0, float(region.PhysicalDeltaX) * 10.0), "ultrasound region (cm)"
    return None


def _center(region: Dataset | None) -> tuple[tuple[float, float], str] | None:
    """The region's reference pixel, which DICOM gives relative to the region's top-left corner."""
    if region is None or region.get("ReferencePixelX0") is None or region.get("ReferencePixelY0") is None:
        return None
    row = float(region.get("RegionLocationMinY0", 0) or 0) + float(region.ReferencePixelY0)
    col = float(region.get("RegionLocationMinX0", 0) or 0) + float(region.ReferencePixelX0)
    return (row, col), "ultrasound region reference pixel"


def default_calibration_values(rows: int, cols: int) -> dict[str, Any]:
    """The documented defaults for an image of `rows` x `cols` pixels."""
    spacing = DEFAULT_FIELD_OF_VIEW_MM / max(rows, cols)
    return {
        "pixel_spacing_mm": (spacing, spacing),
        "center_rc": ((rows - 1) / 2.0, (cols - 1) / 2.0),
        "frame_time_s": DEFAULT_FRAME_TIME_S,
        "pullback_rate_mm_s": DEFAULT_PULLBACK_RATE_MM_S,
    }


def read_calibration(ds: Dataset, rows: int, cols: int, overrides: CalibrationOverrides | None = None) -> Calibration:
    """Calibration from overrides, then the header `ds`, then the defaults."""
    overrides = overrides or CalibrationOverrides()
    region = _spatial_region(ds)
    from_file = {
        "pixel_spacing_mm": _pixel_spacing(ds, region),
        "center_rc": _center(region),
        "frame_time_s": _frame_time(ds),
        "pullback_rate_mm_s": _pullback_rate(ds),
    }
    defaults = default_calibration_values(rows, cols)
    values: dict[str, Any] = {}
    sources: list[tuple[str, str]] = []
    defaulted: list[str] = []
    for name, found in from_file.items():
        override = getattr(overrides, name)
        if override is not None:
            values[name], source = override, "override"
        elif found is not None:
            values[name], source = found
        else:
            values[name], source = defaults[name], "default"
            defaulted.append(name)
        sources.append((name, source))
    return Calibration(**values, defaulted=tuple(defaulted), sources=tuple(sources))
