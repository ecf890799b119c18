"""Vectorised circular run boundaries: equal to a walk around each row, on NumPy and CuPy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.quantify import Arc, frame_arcs
from engine.quantify.arcs import arcs_from_runs, calcium_from_runs, run_boundaries
from engine.xp import cupy_or_none


def walked_runs(row: np.ndarray) -> list[tuple[int, int]]:
    """Oracle: (start, length) of each circular run, found by walking the circle A-line by A-line."""
    a = row.size
    if row.all():
        return [(0, a)]
    runs = []
    for start in range(a):
        if row[start] and not row[start - 1]:
            length = 1
            while row[(start + length) % a]:
                length += 1
            runs.append((start, length))
    return runs


def runs_of(calcium: np.ndarray) -> np.ndarray:
    return np.stack(run_boundaries(calcium, np))


def special_rows(a: int) -> np.ndarray:
    """Full, empty, wrap-around, single A-line at each end, and alternating rows of `a` A-lines."""
    rows = np.zeros((6, a), dtype=bool)
    rows[0] = True
    rows[2, : a // 3] = rows[2, -(a // 4) :] = True
    rows[3, 0] = True
    rows[4, -1] = True
    rows[5, ::2] = True
    return rows


maps = st.integers(1, 40).flatmap(
    lambda a: st.tuples(arrays(bool, st.tuples(st.integers(0, 6), st.just(a))), st.integers(0, 6)).map(
        lambda pair: np.concatenate((pair[0], special_rows(a)[: pair[1]]))
    )
)


@settings(max_examples=200, deadline=None)
@given(maps)
def test_vectorised_runs_equal_a_walk_around_each_row(calcium: np.ndarray) -> None:
    n, a = calcium.shape
    arcs = arcs_from_runs(runs_of(calcium), n, a)
    assert [[(arc.start_aline, arc.n_alines) for arc in row] for row in arcs] == [walked_runs(row) for row in calcium]
    assert arcs == [frame_arcs(row) for row in calcium]


@settings(max_examples=200, deadline=None)
@given(maps)
def test_calcium_rebuilt_from_runs_is_the_map(calcium: np.ndarray) -> None:
    np.testing.assert_array_equal(calcium_from_runs(runs_of(calcium), *calcium.shape), calcium)


def test_runs_are_ordered_by_row_then_start() -> None:
    calcium = special_rows(12)
    rows, starts, lengths = runs_of(calcium)
    assert list(zip(rows.tolist(), starts.tolist(), lengths.tolist(), strict=True)) == [
        (0, 0, 12),  # full circle: one 360-degree run from 0
        (2, 9, 7),  # across 0 degrees: one run, starting after the gap
        (3, 0, 1),
        (4, 11, 1),
        (5, 0, 1), (5, 2, 1), (5, 4, 1), (5, 6, 1), (5, 8, 1), (5, 10, 1),
    ]  # fmt: skip


def test_arc_across_zero_is_one_arc_after_other_arcs_of_its_row() -> None:
    row = np.zeros(360, dtype=bool)
    row[np.r_[350:360, 0:10, 100:120]] = True
    assert arcs_from_runs(runs_of(row[None]), 1, 360) == [[Arc(100, 20, 360), Arc(350, 20, 360)]]


def test_no_rows_and_empty_rows_have_no_runs() -> None:
    assert runs_of(np.zeros((0, 8), dtype=bool)).shape == (3, 0)
    assert arcs_from_runs(runs_of(np.zeros((3, 8), dtype=bool)), 3, 8) == [[], [], []]


@pytest.mark.gpu
@pytest.mark.skipif(cupy_or_none() is None, reason="needs CuPy with a CUDA GPU")
def test_cupy_runs_equal_numpy() -> None:
    cp = cupy_or_none()
    rng = np.random.default_rng(3)
    calcium = np.concatenate((rng.random((200, 360)) < 0.7, special_rows(360)))
    on_device = [cp.asnumpy(part) for part in run_boundaries(cp.asarray(calcium), cp)]
    np.testing.assert_array_equal(np.stack(on_device), runs_of(calcium))
