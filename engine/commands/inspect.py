"""`ivuscal inspect FILE`: describe a DICOM pullback without patient identifiers.

Reads only the header (no frame is decoded). Single-frame ultrasound images are described too;
commands that analyse frames require a pullback.
"""

from __future__ import annotations

from pathlib import Path

import click

from engine.dicom import CalibrationOverrides, PullbackInfo, open_pullback
from engine.dicom.cli_options import calibration_options
from engine.json_output import dumps


def _pair(values: tuple[float, float], digits: int) -> str:
    return f"{values[0]:.{digits}f}, {values[1]:.{digits}f}"


def format_info(info: PullbackInfo) -> str:
    """Human-readable description, one `label: value` per line; defaulted values are marked."""
    cal = info.calibration
    mark = {name: " (default)" if name in cal.defaulted else "" for name in dict(cal.sources)}
    vendor = " ".join(part for part in (info.manufacturer, info.model) if part) or "unknown"
    lines = [
        f"file:             {info.path}",
        f"frames:           {info.n_frames}",
        f"size:             {info.rows} x {info.cols} pixels (rows x cols)",
        f"frame rate:       {info.frame_rate_hz:.2f} frames/s{mark['frame_time_s']}",
        f"pullback rate:    {cal.pullback_rate_mm_s:.3f} mm/s{mark['pullback_rate_mm_s']}",
        f"pullback length:  {info.length_mm:.2f} mm",
        f"pixel spacing:    {_pair(cal.pixel_spacing_mm, 5)} mm (row, col){mark['pixel_spacing_mm']}",
        f"catheter centre:  {_pair(cal.center_rc, 1)} pixels (row, col){mark['center_rc']}",
        f"photometric:      {info.photometric}",
        f"transfer syntax:  {info.transfer_syntax_name} ({info.transfer_syntax_uid})",
        f"modality:         {info.modality}",
        f"vendor:           {vendor}",
        f"defaulted:        {', '.join(cal.defaulted) or 'none'}",
    ]
    return "\n".join(lines)


@click.command(name="inspect")
@click.argument("file", type=click.Path(path_type=Path))  # existence is checked with the other input errors
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@calibration_options
def command(file: Path, as_json: bool, overrides: CalibrationOverrides | None) -> None:
    """Describe FILE: frames, size, rates, length, spacing, centre, encoding, vendor, defaults."""
    with open_pullback(file, overrides=overrides, require_pullback=False) as pullback:
        info = pullback.info
    click.echo(dumps(info.to_dict()).rstrip("\n") if as_json else format_info(info))
