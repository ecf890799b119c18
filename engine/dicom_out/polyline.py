"""A calcium arc as a polyline on the Cartesian frame, in DICOM 2-D image coordinates.

DICOM SCOORD (PS3.3 C.18.6.1.2) and presentation-state PIXEL graphics (C.10.5.1.2) both give
(column, row) with 0.0\\0.0 at the top-left corner of the top-left pixel, so the centre of pixel
(r, c) (0-based) is (c + 0.5, r + 0.5). Angles follow docs/conventions.md: from +column towards
+row, clockwise as displayed.
"""

from __future__ import annotations

import math

import numpy as np

from engine.quantify import Arc

# Largest angle between neighbouring vertices: the chord then strays from the circle by at most
# r * (1 - cos(2.5 deg)) < 0.1 % of the radius (0.2 px at 200 px), and a 3,000-frame SR stays small.
MAX_STEP_DEG = 5.0


def arc_polyline(arc: Arc, center_rc: tuple[float, float], radius_px: float) -> np.ndarray:
    """float32 (n + 1, 2) (column, row) points from `arc.start_deg` clockwise over `arc.extent_deg`,
    n = ceil(extent / MAX_STEP_DEG) equal steps; the first and last points lie exactly on the arc's ends.

    A 360-degree arc is a closed polyline (its last point repeats the first).
    """
    n = max(1, math.ceil(arc.extent_deg / MAX_STEP_DEG))
    angles = np.radians(arc.start_deg + np.linspace(0.0, arc.extent_deg, n + 1))
    row, col = center_rc
    points = np.stack((col + 0.5 + radius_px * np.cos(angles), row + 0.5 + radius_px * np.sin(angles)), axis=1)
    return points.astype(np.float32)


def polyline_arc_deg(points: np.ndarray, center_rc: tuple[float, float]) -> tuple[float, float]:
    """(start_deg in [0, 360), extent_deg) of a polyline written by `arc_polyline` (for reading back)."""
    row, col = center_rc
    d = np.asarray(points, dtype=np.float64) - (col + 0.5, row + 0.5)
    angles = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    steps = np.mod(np.diff(angles), 360.0)
    steps[np.isclose(steps, 360.0, atol=1e-3)] = 0.0
    return float(np.mod(angles[0], 360.0)), float(steps.sum()) if len(steps) else 0.0
