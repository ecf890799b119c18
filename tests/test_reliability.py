"""The reliability flag: calibration, the file beside the weights, frame and pullback flags, and the
flag's figures on wrongly / rightly called frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError
from engine.reliability import Reliability, calibrate, frame_flag, load_reliability, report_section, write_reliability
from training.reliability import flag_figures, member_spread, wrong_frames


def test_calibration_threshold_is_the_quantile_and_false_alarms_match() -> None:
    values = np.random.default_rng(0).gamma(2.0, 0.004, 5000)
    reliability = calibrate(values, 0.99, cohort="x")
    assert reliability.frame_threshold == pytest.approx(np.quantile(values, 0.99))
    assert reliability.calibration["false_alarm_rate"] == pytest.approx(0.01, abs=0.002)
    with pytest.raises(InputError):
        calibrate(values[:5])
    with pytest.raises(InputError):
        calibrate(np.r_[values, np.nan])


def test_frame_and_pullback_flags() -> None:
    reliability = Reliability(0.05, pullback_share=0.5)
    spread = np.zeros((10, 8), np.float32)
    spread[:6] = 0.3  # six of ten frames disagree
    assert reliability.frame_flags(spread).tolist() == [True] * 6 + [False] * 4
    summary = reliability.pullback_summary(spread)
    assert summary["flagged_frames"] == 6 and summary["pullback_flagged"]
    assert frame_flag(reliability, spread[0]) is True and frame_flag(None, spread[0]) is None
    section = report_section(spread, reliability.to_dict())
    assert section["notice"].startswith("UNRELIABLE: the ensemble disagrees on 60% of frames")
    assert report_section(spread[6:], reliability.to_dict())["notice"] is None
    assert report_section(spread, None)["pullback_flagged"] is None


def test_file_beside_the_weights_round_trips_and_refuses_other_weights(tmp_path: Path) -> None:
    weights = tmp_path / "m.safetensors"
    assert load_reliability(weights) is None
    path = write_reliability(weights, Reliability(0.02, calibration={"weights_sha256": "abc"}))
    assert path.name == "m.reliability.json"
    assert load_reliability(weights, "abc").frame_threshold == 0.02
    with pytest.raises(InputError, match="other weights"):
        load_reliability(weights, "def")
    path.write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        load_reliability(weights)


def test_flag_figures_count_caught_wrong_frames_and_false_alarms() -> None:
    truth = np.zeros((4, 20), bool)
    prob = np.zeros((4, 20), np.float32)
    prob[0:2, :10] = 1.0  # frames 0-1 wrongly called (half the circle)
    wrong = wrong_frames(prob, truth, (1, 1))
    assert wrong.tolist() == [True, True, False, False]
    spread = np.zeros((4, 20), np.float32)
    spread[[0, 2]] = 0.4  # flags frame 0 (caught) and frame 2 (false alarm)
    figures = flag_figures([("a", spread, wrong)], Reliability(0.1))
    assert figures["wrong_frames_flagged"] == 0.5 and figures["right_frames_flagged"] == 0.5
    probs = {"model0": np.zeros((1, 3)), "model1": np.ones((1, 3)), "ensemble": np.full((1, 3), 0.5)}
    assert member_spread(probs).tolist() == [[0.5, 0.5, 0.5]]


def test_live_results_carry_the_frame_flag(tmp_path: Path) -> None:
    """Over real loopback sockets: a calibrated model flags frames in `uncertainty.flagged`."""
    from test_streaming_fixtures import loopback, make_ensemble, make_frames, start

    from engine.model.weights import load_ensemble
    from tools.replay import send_pullback

    frames = make_frames(8, seed=4)
    model = make_ensemble(tmp_path / "ensemble.safetensors", frames)
    write_reliability(model, Reliability(-1.0, calibration={"weights_sha256": load_ensemble(model).sha256}))
    with loopback(model, tmp_path) as engine:
        send_pullback(engine.sender(), [(0, frames)], start(n_frames=8), fps=None)
        events = engine.wait_for_summaries(1, timeout_s=60)
    results = [e for e in events if e["kind"] == "result"]
    assert results and all(r["uncertainty"]["flagged"] is True for r in results)
