"""Calcium arcs of one frame: runs of calcified A-lines on the circle.

A-line `k` of `A` covers `[k*360/A, (k+1)*360/A)` degrees (CONVENTIONS.md), so an arc of `n`
A-lines starting at A-line `s` spans `[s*360/A, (s+n)*360/A)`. A run that crosses 0 degrees is one
arc (its end angle is smaller than its start); a fully calcified frame is one 360-degree arc
starting at 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.errors import InputError


@dataclass(frozen=True)
class Arc:
    """One contiguous calcium arc: A-lines `start_aline .. start_aline + n_alines - 1` (mod A)."""

    start_aline: int
    n_alines: int
    total_alines: int

    @property
    def start_deg(self) -> float:
        return self.start_aline * 360.0 / self.total_alines

    @property
    def end_deg(self) -> float:
        """Clockwise end angle in (0, 360]; smaller than `start_deg` for an arc across 0 degrees."""
        end = (self.start_aline + self.n_alines) % self.total_alines
        return 360.0 if end == 0 else end * 360.0 / self.total_alines

    @property
    def extent_deg(self) -> float:
        return self.n_alines * 360.0 / self.total_alines

    def to_dict(self) -> dict:
        return {**asdict(self), "start_deg": self.start_deg, "end_deg": self.end_deg, "extent_deg": self.extent_deg}


def frame_arcs(row: np.ndarray) -> list[Arc]:
    """The calcium arcs of one frame's bool row (A,), ordered by start A-line."""
    row = np.asarray(row)
    if row.ndim != 1 or row.size == 0:
        raise InputError(f"calcium row must be 1-D and non-empty, got shape {row.shape}")
    row = row.astype(bool)
    a = row.size
    if row.all():
        return [Arc(0, a, a)]
    if not row.any():
        return []
    # Rotate so that index 0 is not calcified: no run then crosses the array's end.
    shift = int(np.flatnonzero(~row)[0])
    rotated = np.roll(row, -shift)
    edges = np.diff(np.concatenate(([0], rotated.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    arcs = [Arc(int((s + shift) % a), int(e - s), a) for s, e in zip(starts, ends, strict=True)]
    return sorted(arcs, key=lambda arc: arc.start_aline)


def max_arc_deg(row: np.ndarray) -> float:
    """The largest contiguous arc of a frame in degrees (0 when it holds no calcium)."""
    return max((arc.extent_deg for arc in frame_arcs(row)), default=0.0)


def total_arc_deg(row: np.ndarray) -> float:
    """The calcified fraction of the circle in degrees (sum of all arcs)."""
    row = np.asarray(row, dtype=bool)
    return int(row.sum()) * 360.0 / row.size
