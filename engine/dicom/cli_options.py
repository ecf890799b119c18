"""Command-line options that override a pullback's calibration, shared by every command that reads DICOM.

Usage::

    @click.command()
    @calibration_options
    def command(file: Path, overrides: CalibrationOverrides | None) -> None:
        with open_pullback(file, overrides=overrides) as pullback: ...

The decorator adds `--frame-time-ms`, `--frame-rate`, `--pullback-rate`, `--pixel-spacing` and
`--center` and hands the command one `overrides` argument (None when none was given).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from engine.dicom.calibration import CalibrationOverrides

_POSITIVE = click.FloatRange(min=0.0, min_open=True)


class FloatPair(click.ParamType):
    """`A,B` as two floats; a single number means `A,A` when `allow_single`."""

    name = "float_pair"

    def __init__(self, allow_single: bool, positive: bool) -> None:
        self.allow_single = allow_single
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",")]
        if len(parts) == 1 and self.allow_single:
            parts = parts * 2
        try:
            pair = (float(parts[0]), float(parts[1])) if len(parts) == 2 else None
        except ValueError:
            pair = None
        if pair is None:
            self.fail(f"{value!r} is not {'A or ' if self.allow_single else ''}A,B (numbers)", param, ctx)
        if self.positive and min(pair) <= 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        return pair


_OPTIONS = (
    click.option("--frame-time-ms", type=_POSITIVE, default=None,
                 help="Time between frames in ms (overrides the file)."),
    click.option("--frame-rate", type=_POSITIVE, default=None,
                 help="Frames per second (alternative to --frame-time-ms)."),
    click.option("--pullback-rate", type=_POSITIVE, default=None, help="Pullback speed in mm/s (overrides the file)."),
    click.option(
        "--pixel-spacing",
        type=FloatPair(allow_single=True, positive=True),
        default=None,
        metavar="MM[,MM]",
        help="Pixel spacing in mm: one value, or ROW,COL (overrides the file).",
    ),
    click.option(
        "--center",
        type=FloatPair(allow_single=False, positive=False),
        default=None,
        metavar="ROW,COL",
        help="Catheter centre ROW,COL in pixels (overrides the file).",
    ),
)


def overrides_from_options(
    frame_time_ms: float | None = None,
    frame_rate: float | None = None,
    pullback_rate: float | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    center: tuple[float, float] | None = None,
) -> CalibrationOverrides | None:
    """The overrides the options ask for, or None when none was given."""
    if frame_time_ms is not None and frame_rate is not None:
        raise click.UsageError("give --frame-time-ms or --frame-rate, not both")
    frame_time_s = frame_time_ms / 1000.0 if frame_time_ms is not None else (1.0 / frame_rate if frame_rate else None)
    overrides = CalibrationOverrides(
        pixel_spacing_mm=pixel_spacing,
        center_rc=center,
        frame_time_s=frame_time_s,
        pullback_rate_mm_s=pullback_rate,
    )
    return None if overrides.is_empty() else overrides


def calibration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Click decorator: add the calibration options and pass `overrides=` to `command`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        frame_time_ms: float | None,
        frame_rate: float | None,
        pullback_rate: float | None,
        pixel_spacing: tuple[float, float] | None,
        center: tuple[float, float] | None,
        **kwargs: Any,
    ) -> Any:
        overrides = overrides_from_options(frame_time_ms, frame_rate, pullback_rate, pixel_spacing, center)
        return command(*args, overrides=overrides, **kwargs)

    wrapper.__click_params__ = list(getattr(command, "__click_params__", []))  # type: ignore[attr-defined]
    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
