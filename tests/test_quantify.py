"""Arcs, lesions and the calcium score on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InputError
from engine.quantify import (
    NOT_ASSESSED,
    ClinicalFindings,
    LesionTracker,
    QuantifySettings,
    arc_grade,
    frame_arcs,
    max_arc_deg,
    summarize_pullback,
    total_arc_deg,
)


def row_with(a: int, *spans: tuple[int, int]) -> np.ndarray:
    """A bool row of `a` A-lines, calcified on [start, stop) spans (stop may exceed a: wraps)."""
    row = np.zeros(a, dtype=bool)
    for start, stop in spans:
        row[np.arange(start, stop) % a] = True
    return row


def test_empty_frame_has_no_arcs() -> None:
    assert frame_arcs(np.zeros(360, dtype=bool)) == []
    assert max_arc_deg(np.zeros(360, dtype=bool)) == 0.0


def test_single_aline_is_one_degree_arc() -> None:
    (arc,) = frame_arcs(row_with(360, (90, 91)))
    assert (arc.start_deg, arc.end_deg, arc.extent_deg) == (90.0, 91.0, 1.0)


def test_arc_across_zero_degrees_is_one_arc() -> None:
    (arc,) = frame_arcs(row_with(360, (350, 370)))
    assert (arc.start_aline, arc.n_alines) == (350, 20)
    assert (arc.start_deg, arc.end_deg, arc.extent_deg) == (350.0, 10.0, 20.0)


def test_full_circle_is_one_360_degree_arc() -> None:
    (arc,) = frame_arcs(np.ones(360, dtype=bool))
    assert (arc.start_deg, arc.end_deg, arc.extent_deg) == (0.0, 360.0, 360.0)


def test_arc_ending_at_last_aline_ends_at_360() -> None:
    (arc,) = frame_arcs(row_with(360, (300, 360)))
    assert (arc.start_deg, arc.end_deg) == (300.0, 360.0)


def test_several_arcs_are_ordered_and_total_arc_sums_them() -> None:
    row = row_with(720, (700, 730), (100, 200))
    arcs = frame_arcs(row)
    assert [(a.start_aline, a.n_alines) for a in arcs] == [(100, 100), (700, 30)]
    assert total_arc_deg(row) == 65.0
    assert max_arc_deg(row) == 50.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=50))
def test_arcs_cover_exactly_the_calcified_alines(values: list[bool]) -> None:
    row = np.array(values)
    covered = np.zeros_like(row)
    for arc in frame_arcs(row):
        idx = np.arange(arc.start_aline, arc.start_aline + arc.n_alines) % row.size
        assert not covered[idx].any()
        covered[idx] = True
        assert not row[(arc.start_aline - 1) % row.size] or arc.n_alines == row.size
    np.testing.assert_array_equal(covered, row)


def test_bad_row_is_input_error() -> None:
    with pytest.raises(InputError, match="1-D"):
        frame_arcs(np.zeros((2, 3), dtype=bool))


def make_map(n_frames: int, a: int, arcs_by_frame: dict[range, int]) -> np.ndarray:
    """Frames x A map: frames in each range carry one arc of the given number of A-lines."""
    calcium = np.zeros((n_frames, a), dtype=bool)
    for frames, n in arcs_by_frame.items():
        calcium[frames, :n] = True
    return calcium


def test_gap_shorter_than_merge_length_is_merged() -> None:
    # spacing 0.2 mm: a 4-frame gap (0.8 mm) merges, a 5-frame gap (1.0 mm) splits.
    calcium = make_map(60, 360, {range(0, 10): 90, range(14, 20): 45, range(25, 30): 10})
    summary = summarize_pullback(calcium, 0.2)
    spans = [(les.start_frame, les.end_frame) for les in summary.lesions]
    assert spans == [(0, 19), (25, 29)]
    first = summary.lesions[0]
    assert first.length_mm == pytest.approx(4.0)
    assert first.calcified_frames == 16
    assert first.max_arc_deg == 90.0
    assert first.mean_arc_deg == pytest.approx((10 * 90 + 6 * 45) / 16)
    assert summary.calcium_length_mm == pytest.approx(21 * 0.2)


def test_merge_gap_is_a_parameter() -> None:
    calcium = make_map(30, 36, {range(0, 5): 3, range(8, 12): 3})
    assert len(summarize_pullback(calcium, 0.5, QuantifySettings(merge_gap_mm=2.0)).lesions) == 1
    assert len(summarize_pullback(calcium, 0.5, QuantifySettings(merge_gap_mm=1.5)).lesions) == 2


def test_score_arc_point_needs_more_than_270_over_5mm() -> None:
    spacing = 0.5  # 10 frames = 5.0 mm exactly
    exactly_5mm = summarize_pullback(make_map(30, 360, {range(5, 15): 271}), spacing)
    assert exactly_5mm.score.arc_over_length == 1
    assert exactly_5mm.lesions[0].longest_run_mm[270.0] == 5.0
    shorter = summarize_pullback(make_map(30, 360, {range(5, 14): 271}), spacing)
    assert shorter.score.arc_over_length == 0
    exactly_270 = summarize_pullback(make_map(30, 360, {range(5, 20): 270}), spacing)
    assert exactly_270.score.arc_over_length == 0
    assert exactly_270.lesions[0].grade == 3
    assert exactly_5mm.lesions[0].grade == 4


def test_gap_frames_break_the_arc_run() -> None:
    # two 6-frame runs of 300 degrees, 1-frame gap: one lesion, but no 5 mm run above 270.
    summary = summarize_pullback(make_map(40, 360, {range(0, 6): 300, range(7, 13): 300}), 0.5)
    assert len(summary.lesions) == 1
    assert summary.lesions[0].longest_run_mm[270.0] == 3.0
    assert summary.score.arc_over_length == 0


def test_full_circle_point_and_not_assessed_points() -> None:
    summary = summarize_pullback(make_map(10, 360, {range(2, 4): 360}), 0.5)
    assert summary.score.full_circle == 1
    assert summary.lesions[0].has_360
    shown = summary.score.to_dict()
    assert shown["calcified_nodule"] == NOT_ASSESSED and shown["vessel_diameter_small"] == NOT_ASSESSED
    assert shown["total_assessed"] == 1 and not shown["complete"]


def test_user_findings_complete_the_score() -> None:
    calcium = make_map(20, 360, {range(0, 12): 360})
    findings = ClinicalFindings(calcified_nodule=True, vessel_diameter_mm=3.0)
    score = summarize_pullback(calcium, 0.5, findings=findings).score
    assert (score.total, score.complete) == (4, True)
    score = summarize_pullback(calcium, 0.5, findings=ClinicalFindings(False, 3.5)).score
    assert score.total == 2


@pytest.mark.parametrize("arc, grade", [(0, 0), (1, 1), (90, 1), (90.5, 2), (180, 2), (270, 3), (271, 4), (360, 4)])
def test_arc_grade_by_quadrant(arc: float, grade: int) -> None:
    assert arc_grade(arc) == grade


def test_tracker_closes_lesions_as_rows_arrive_and_matches_offline() -> None:
    calcium = make_map(40, 36, {range(3, 8): 10, range(20, 25): 36})
    tracker = LesionTracker(0.2)
    closed_at = {}
    for index, row in enumerate(calcium):
        for lesion in tracker.update(index, row):
            closed_at[lesion.start_frame] = index
        if index == 5:
            assert tracker.open_lesion is not None and tracker.open_lesion.end_frame == 5
    # each lesion closes once its gap reaches 5 x 0.2 mm = 1.0 mm
    assert closed_at == {3: 12, 20: 29}
    assert tracker.open_lesion is None
    assert tracker.finish() == []
    assert tracker.summary().to_dict() == summarize_pullback(calcium, 0.2).to_dict()


def test_tracker_refuses_out_of_order_rows_and_bad_spacing() -> None:
    tracker = LesionTracker(0.2)
    tracker.update(0, np.zeros(8, dtype=bool))
    with pytest.raises(InputError, match="expected frame 1"):
        tracker.update(2, np.zeros(8, dtype=bool))
    with pytest.raises(InputError, match="frame spacing"):
        LesionTracker(0.0)


def test_empty_pullback_summary() -> None:
    summary = summarize_pullback(np.zeros((5, 360), dtype=bool), 0.1)
    assert summary.lesions == [] and summary.max_arc_deg == 0.0 and summary.score.total == 0
    assert summary.to_dict()["score_lesion"] is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=80),
    st.floats(0.1, 0.5),
    st.floats(0.0, 2.0),
)
def test_lesions_are_ordered_disjoint_cover_calcium_and_respect_the_merge_gap(
    arcs: list[int], spacing: float, merge_gap_mm: float
) -> None:
    calcium = np.zeros((len(arcs), 12), dtype=bool)
    for i, n in enumerate(arcs):
        calcium[i, :n] = True
    lesions = summarize_pullback(calcium, spacing, QuantifySettings(merge_gap_mm=merge_gap_mm)).lesions
    covered = np.zeros(len(arcs), dtype=bool)
    for lesion in lesions:
        assert calcium[lesion.start_frame].any() and calcium[lesion.end_frame].any()
        covered[lesion.start_frame : lesion.end_frame + 1] = True
        # inside a lesion no gap reaches the merge length
        gap = 0
        for i in range(lesion.start_frame, lesion.end_frame + 1):
            gap = 0 if calcium[i].any() else gap + 1
            assert gap * spacing < merge_gap_mm - 1e-9 or gap == 0
    for before, after in zip(lesions, lesions[1:], strict=False):
        assert (after.start_frame - before.end_frame - 1) * spacing >= merge_gap_mm - 1e-9
    np.testing.assert_array_equal(covered[calcium.any(axis=1)], True)
