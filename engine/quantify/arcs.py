"""Calcium arcs of one frame: runs of calcified A-lines on the circle.

A-line `k` of `A` covers `[k*360/A, (k+1)*360/A)` degrees (docs/conventions.md), so an arc of `n`
A-lines starting at A-line `s` spans `[s*360/A, (s+n)*360/A)`. A run that crosses 0 degrees is one
arc (its end angle is smaller than its start); a fully calcified frame is one 360-degree arc
starting at 0.

`run_boundaries` finds the runs of a whole (B, A) map with NumPy or CuPy array operations, so a
GPU pipeline brings back only run boundaries; `arcs_from_runs` and `calcium_from_runs` turn those
host boundaries into arcs and bool rows; `frame_arcs` is the per-row form. The per-frame
statistics (`largest_arc_deg`, `max_arc_deg`, `max_arcs_deg`, `total_arc_deg`) are defined here only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

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


def run_boundaries(calcium: Any, xp: ModuleType = np) -> tuple[Any, Any, Any]:
    """The circular runs of a bool (B, A) map on `xp`: `(rows, starts, lengths)`, 1-D int64 on `xp`.

    Runs are ordered by row, then start A-line. A run that crosses 0 degrees is one run (its start
    is its first A-line after the gap); a fully calcified row is one run `(row, 0, A)`. Only array
    operations of both NumPy and CuPy are used, so on a GPU only the boundaries need come back.
    """
    calcium = xp.asarray(calcium, dtype=bool)
    a = calcium.shape[1]
    padded = xp.concatenate((calcium[:, -1:], calcium, calcium[:, :1]), axis=1).astype(xp.int8)
    step = xp.diff(padded, axis=1)  # step[:, k] = c[k] - c[k - 1] (indices mod A)
    full = calcium.all(axis=1)
    first = step[:, :a] == 1  # A-line k starts a run
    last = step[:, 1:] == -1  # A-line k ends a run (inclusive)
    first[:, 0] |= full
    last[:, -1] |= full
    rows, starts = xp.nonzero(first)
    _, ends = xp.nonzero(last)
    # Rows are ordered alike in both lists; in a row whose run wraps, the first end belongs to the
    # last start, so each start takes the next end of its row (the last start: the row's first end).
    wraps = calcium[:, 0] & calcium[:, -1] & ~full
    counts = first.sum(axis=1)
    offsets = xp.cumsum(counts) - counts
    i = xp.arange(rows.size)
    following = xp.where(i == offsets[rows] + counts[rows] - 1, offsets[rows], i + 1)
    partner = xp.where(wraps[rows], following, i)
    lengths = (ends[partner] - starts) % a + 1
    return rows.astype(xp.int64), starts.astype(xp.int64), lengths.astype(xp.int64)


def arcs_from_runs(runs: np.ndarray, n_rows: int, n_alines: int) -> list[list[Arc]]:
    """Per-row arc lists (ordered by start) from host runs `(3, N)`: rows, starts, lengths."""
    arcs: list[list[Arc]] = [[] for _ in range(n_rows)]
    for row, start, length in zip(*(np.asarray(r).tolist() for r in runs), strict=True):
        arcs[row].append(Arc(start, length, n_alines))
    return arcs


def calcium_from_runs(runs: np.ndarray, n_rows: int, n_alines: int) -> np.ndarray:
    """The bool (n_rows, n_alines) map whose circular runs are `runs` `(3, N)`: rows, starts, lengths."""
    rows, starts, lengths = (np.asarray(r, dtype=np.int64) for r in runs)
    delta = np.zeros((n_rows, 2 * n_alines + 1), dtype=np.int32)
    np.add.at(delta, (rows, starts), 1)
    np.add.at(delta, (rows, starts + lengths), -1)
    cover = np.cumsum(delta, axis=1)
    return (cover[:, :n_alines] + cover[:, n_alines : 2 * n_alines]) > 0


def frame_arcs(row: np.ndarray) -> list[Arc]:
    """The calcium arcs of one frame's bool row (A,), ordered by start A-line."""
    row = np.asarray(row)
    if row.ndim != 1 or row.size == 0:
        raise InputError(f"calcium row must be 1-D and non-empty, got shape {row.shape}")
    runs = np.stack(run_boundaries(row.astype(bool)[None], np))
    return arcs_from_runs(runs, 1, row.size)[0]


def largest_arc_deg(arcs: list[Arc]) -> float:
    """The extent of the largest of a frame's arcs in degrees (0 when there is none)."""
    return max((arc.extent_deg for arc in arcs), default=0.0)


def max_arc_deg(row: np.ndarray) -> float:
    """The largest contiguous arc of a frame's bool row (A,) in degrees (0 when it holds no calcium)."""
    return largest_arc_deg(frame_arcs(row))


def max_arcs_deg(calcium: np.ndarray) -> np.ndarray:
    """The largest contiguous arc of each frame of a bool (frames, A) map, degrees (frames,)."""
    return np.array([max_arc_deg(row) for row in np.asarray(calcium)], dtype=np.float64)


def total_arc_deg(row: np.ndarray) -> float:
    """The calcified fraction of the circle in degrees (sum of all arcs)."""
    row = np.asarray(row, dtype=bool)
    return int(row.sum()) * 360.0 / row.size
