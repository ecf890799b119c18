"""Metrics and reports: counts, ratios, arc error, filter stage, ensemble vs members."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.metrics import Confusion, arc_errors_deg
from engine.model.spec import InputSpec
from training.cache import CacheWriter
from training.evaluate import format_report, score_map, score_predictions

SPEC = InputSpec(n_alines=72, n_depth=16)


def test_confusion_counts_and_ratios() -> None:
    truth = np.zeros((2, 8), bool)
    truth[0, :4] = True
    pred = np.zeros((2, 8), bool)
    pred[0, 2:6] = True
    c = Confusion.of(pred, truth)
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 2, 10, 2)
    m = c.metrics()
    assert m["accuracy"] == pytest.approx(12 / 16)
    assert m["dice"] == pytest.approx(4 / 8)
    assert m["sensitivity"] == pytest.approx(0.5) and m["specificity"] == pytest.approx(10 / 12)
    assert m["arc_error_deg"] == pytest.approx(0.0)  # same arc length in both frames


def test_arc_error_in_degrees() -> None:
    truth = np.zeros((1, 360), bool)
    truth[0, :90] = True
    pred = np.zeros((1, 360), bool)
    pred[0, :60] = True
    assert arc_errors_deg(pred, truth).tolist() == [30.0]


def test_no_calcium_anywhere_gives_nan_dice_not_an_error() -> None:
    empty = np.zeros((3, 10), bool)
    m = Confusion.of(empty, empty).metrics()
    assert m["accuracy"] == 1.0 and math.isnan(m["dice"]) and math.isnan(m["sensitivity"])


def test_pooling_adds_counts() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5, 12)) > 0.5, rng.random((2, 5, 12)) > 0.5
    total = Confusion.of(a[0], b[0])
    total += Confusion.of(a[1], b[1])
    assert total == Confusion.of(np.concatenate(a), np.concatenate(b))


def test_filter_removes_isolated_false_positives() -> None:
    truth = np.zeros((30, 72), bool)
    truth[5:25, 10:40] = True
    prob = truth.astype(np.float32) * 0.9
    prob[15, 60] = 0.9  # one stray A-line
    prob[8, 20] = 0.1  # one missed A-line inside the lesion
    scores = score_map(prob, truth, (13, 61))
    assert scores["raw"].fp == 1 and scores["raw"].fn == 1
    assert scores["filtered"].fp == 0


def test_report_has_members_mean_single_and_ensemble(tmp_path) -> None:
    writer = CacheWriter(tmp_path, SPEC)
    truth = np.zeros((20, 72), bool)
    truth[4:16, 0:30] = True
    for i in range(2):
        writer.add(f"pb{i}", f"p{i}", np.zeros((20, 16, 72), np.float32), truth)
    cache = writer.close()
    rng = np.random.default_rng(1)
    items = []
    for index in range(2):
        members = {
            f"model{m}": np.clip(truth + rng.normal(0, 0.45, truth.shape), 0, 1).astype(np.float32) for m in range(3)
        }
        members["ensemble"] = np.mean(list(members.values()), axis=0)
        items.append((index, members))
    report = score_predictions(items, cache, (5, 11))
    pooled = report["pooled"]
    assert set(pooled) == {"model0", "model1", "model2", "ensemble", "mean_single"}
    assert pooled["ensemble"]["raw"]["accuracy"] > pooled["mean_single"]["raw"]["accuracy"]
    assert pooled["ensemble"]["filtered"]["accuracy"] >= pooled["ensemble"]["raw"]["accuracy"]
    assert len(report["per_pullback"]) == 2 and report["per_pullback"][0]["n_frames"] == 20
    assert "ensemble" in format_report(report)
