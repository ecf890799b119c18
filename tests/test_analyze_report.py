"""Report pieces on hand-made maps: agreement metrics, key-frame choice, probability-row seam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import InputError
from engine.filter import filter_map
from engine.pipeline import PipelineSettings
from engine.quantify import summarize_pullback
from engine.report import KeyFrameKeeper, aline_metrics, result_from_probabilities, truth_comparison


def test_aline_metrics_on_a_hand_made_map() -> None:
    truth = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)  # tp 2, fp 1, fn 1, tn 4
    m = aline_metrics(pred, truth)
    assert m == pytest.approx({"accuracy": 6 / 8, "dice": 4 / 6, "sensitivity": 2 / 3, "specificity": 4 / 5})


def test_metrics_with_nothing_to_find_are_undefined_as_everywhere_in_the_project() -> None:
    empty = np.zeros((3, 5), dtype=bool)
    m = aline_metrics(empty, empty)
    assert m["accuracy"] == 1.0 and m["specificity"] == 1.0
    assert math.isnan(m["dice"]) and math.isnan(m["sensitivity"])  # docs/conventions.md, Metrics


def test_metrics_refuse_mismatched_shapes() -> None:
    with pytest.raises(InputError, match="must both be"):
        aline_metrics(np.zeros((3, 5), bool), np.zeros((4, 5), bool))


def test_result_from_probabilities_is_filter_plus_quantify() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((600, 36)).astype(np.float32)  # more rows than one step of the seam
    prob[100:200, :30] = 0.9
    settings = PipelineSettings(window_frames=5, window_alines=7)
    result = result_from_probabilities(prob, None, 0.1, settings, model={"model_id": "m"})
    expected = filter_map(prob, 5, 7)
    np.testing.assert_array_equal(result.calcium, expected)
    assert result.summary.to_dict() == summarize_pullback(expected, 0.1).to_dict()
    np.testing.assert_allclose(result.frame_position_mm, np.arange(600) * 0.1)
    comparison = truth_comparison(result, expected)
    assert comparison["after_filter"]["dice"] == 1.0 and comparison["score_agrees"]


def test_key_frames_are_the_largest_arc_of_each_segment() -> None:
    keeper = KeyFrameKeeper(n_frames=8, n_slots=2)
    arcs = [0, 30, 30, 10, 5, 90, 90, 0]
    for i, arc in enumerate(arcs):
        keeper.offer(i, arc, np.full((2, 2), i, np.uint8))
    assert [(i, int(img[0, 0])) for i, img in keeper.frames()] == [(1, 1), (5, 5)]
