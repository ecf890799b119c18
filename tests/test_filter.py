"""The streaming ring-buffer filter equals the docs/conventions.md oracle, final and provisional."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from engine.errors import InputError
from engine.filter import DEFAULT_WINDOW, STUDY_WINDOW, StreamingCalciumFilter, filter_map
from engine.xp import cupy_or_none


def oracle(prob: np.ndarray, window_frames: int, window_alines: int) -> np.ndarray:
    """docs/conventions.md: median of the votes over the wrap/edge padded window, cropped back."""
    votes = (prob > 0.5).astype(np.float32)
    hf, ha = window_frames // 2, window_alines // 2
    padded = np.pad(votes, ((0, 0), (ha, ha)), mode="wrap")
    padded = np.pad(padded, ((hf, hf), (0, 0)), mode="edge")
    med = ndimage.median_filter(padded, size=(window_frames, window_alines))
    return med[hf : hf + prob.shape[0], ha : ha + prob.shape[1]] > 0.5


@st.composite
def maps_and_windows(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    n_alines = draw(st.integers(1, 40))
    n_frames = draw(st.integers(1, 30))
    window_frames = 2 * draw(st.integers(0, 8)) + 1
    # window_alines up to and a little beyond A (wraps more than once)
    window_alines = 2 * draw(st.integers(0, n_alines)) + 1
    density = draw(st.floats(0.05, 0.95))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    prob = rng.random((n_frames, n_alines)).astype(np.float32)
    prob = np.where(rng.random(prob.shape) < density, prob * 0.5 + 0.5 + 1e-3, prob * 0.5).astype(np.float32)
    return prob, window_frames, window_alines


@settings(max_examples=150, deadline=None)
@given(maps_and_windows())
def test_final_output_equals_oracle(case: tuple[np.ndarray, int, int]) -> None:
    prob, wf, wa = case
    np.testing.assert_array_equal(filter_map(prob, wf, wa), oracle(prob, wf, wa))


@settings(max_examples=80, deadline=None)
@given(maps_and_windows())
def test_provisional_equals_oracle_on_prefix(case: tuple[np.ndarray, int, int]) -> None:
    prob, wf, wa = case
    filt = StreamingCalciumFilter(prob.shape[1], wf, wa)
    for t, row in enumerate(prob):
        index, provisional = filt.push(row).provisional
        assert index == t
        np.testing.assert_array_equal(provisional, oracle(prob[: t + 1], wf, wa)[t])


@settings(max_examples=60, deadline=None)
@given(maps_and_windows())
def test_each_frame_is_final_once_in_order_and_at_lag_h(case: tuple[np.ndarray, int, int]) -> None:
    prob, wf, wa = case
    h = wf // 2
    filt = StreamingCalciumFilter(prob.shape[1], wf, wa)
    seen: list[int] = []
    for t, row in enumerate(prob):
        final = [index for index, _ in filt.push(row).final]
        assert final == ([t - h] if t >= h else [])
        seen.extend(final)
    seen.extend(index for index, _ in filt.flush())
    assert seen == list(range(len(prob)))


def test_default_and_study_windows_on_full_size_map() -> None:
    rng = np.random.default_rng(7)
    prob = rng.random((40, 360)).astype(np.float32)
    prob[10:30, 100:250] += 0.4
    assert DEFAULT_WINDOW == (3, 15) and STUDY_WINDOW == (13, 61)
    np.testing.assert_array_equal(filter_map(prob), oracle(prob, 3, 15))
    np.testing.assert_array_equal(filter_map(prob, *STUDY_WINDOW), oracle(prob, 13, 61))


def test_reset_starts_a_new_pullback() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((9, 30)), rng.random((5, 30))
    filt = StreamingCalciumFilter(30, 5, 7)
    for row in a:
        filt.push(row)
    filt.flush()
    filt.reset()
    got = np.zeros((5, 30), dtype=bool)
    for row in b:
        for i, r in filt.push(row).final:
            got[i] = r
    for i, r in filt.flush():
        got[i] = r
    np.testing.assert_array_equal(got, oracle(b, 5, 7))


def test_push_after_flush_is_refused() -> None:
    filt = StreamingCalciumFilter(8, 3, 3)
    filt.push(np.zeros(8))
    filt.flush()
    with pytest.raises(InputError, match="flushed"):
        filt.push(np.zeros(8))


@pytest.mark.parametrize("wf, wa", [(12, 61), (13, 0), (0, 3), (-3, 3), (3.0, 3)])
def test_bad_window_sizes_are_input_errors(wf: object, wa: object) -> None:
    with pytest.raises(InputError, match="window_"):
        StreamingCalciumFilter(360, wf, wa)  # type: ignore[arg-type]


def test_wrong_row_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"shape \(16,\)"):
        StreamingCalciumFilter(16, 3, 3).push(np.zeros(15))


@pytest.mark.gpu
@pytest.mark.skipif(cupy_or_none() is None, reason="needs CuPy with a CUDA GPU")
def test_cupy_matches_numpy() -> None:
    cp = cupy_or_none()
    rng = np.random.default_rng(3)
    prob = rng.random((50, 360)).astype(np.float32)
    got = filter_map(cp.asarray(prob), 13, 61, xp=cp)
    np.testing.assert_array_equal(cp.asnumpy(got), oracle(prob, 13, 61))
