"""`ivuscal analyze` end to end on a generated pullback: files well formed, chunking irrelevant, bad input exit 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from engine.cli import main
from engine.filter import filter_map
from engine.streaming.journal import JournalWriter
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, write_pullback
from tests.tiny_model import calcium_frames, tiny_ensemble
from tools.simulator import PullbackTruth, write_truth

N_FRAMES = 30


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return calcium_frames(N_FRAMES)  # calcium-like arc on frames 8-21


@pytest.fixture(scope="module")
def weights(frames: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_ensemble(tmp_path_factory.mktemp("model") / "tiny.safetensors", frames)


@pytest.fixture(scope="module")
def pullback(frames: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dcm") / "pullback.dcm"
    return write_pullback(path, frames, pixel_spacing_mm=0.05, frame_time_ms=40.0, pullback_rate_mm_s=5.0)


def analyze(args: list[str]) -> int:
    return main(["analyze", *args])


@pytest.fixture(scope="module")
def report(pullback: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    args = [str(pullback), "--out", str(out), "--model", str(weights), "--backend", "torch", "--quiet",
            "--window-frames", "5", "--window-alines", "9", "--chunk-frames", "7", "--center", "40,40"]
    assert analyze(args) == 0
    return out


def test_report_files_are_well_formed(report: Path) -> None:
    with np.load(report / "calcium_map.npz") as data:
        assert set(data.files) == {"calcium", "probability", "angles_deg", "frame_position_mm"}
        assert data["calcium"].dtype == bool and data["calcium"].shape == (N_FRAMES, 64)
        assert data["probability"].dtype == np.float32 and data["probability"].shape == (N_FRAMES, 64)
        np.testing.assert_allclose(data["angles_deg"], (np.arange(64) + 0.5) * 360 / 64)
        np.testing.assert_allclose(data["frame_position_mm"], np.arange(N_FRAMES) * 0.04 * 5.0)
        np.testing.assert_array_equal(data["calcium"], filter_map(data["probability"], 5, 9))
        calcium = data["calcium"]
    summary = json.loads((report / "summary.json").read_text())
    for key in ("lesions", "max_arc_deg", "calcium_length_mm", "score", "settings", "model"):
        assert key in summary
    assert summary["settings"]["window_frames"] == 5 and summary["settings"]["window_alines"] == 9
    assert summary["model"]["model_id"].startswith("tiny-test@")
    assert summary["calcium_length_mm"] == pytest.approx(calcium.any(axis=1).sum() * 0.2)
    with open(report / "frames.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame"]) for r in rows] == list(range(N_FRAMES))
    with open(report / "lesions.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(summary["lesions"])
    for name in ("longitudinal_map.png", "arc_profile.png", "key_frames.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_patient_identifiers_in_the_report(report: Path) -> None:
    for path in report.iterdir():
        if path.suffix in (".json", ".csv"):
            text = path.read_text()
            assert PATIENT_NAME not in text and PATIENT_ID not in text


def test_chunk_size_does_not_change_the_result(report: Path, pullback: Path, weights: Path, tmp_path: Path) -> None:
    args = [str(pullback), "--out", str(tmp_path), "--model", str(weights), "--backend", "torch", "--quiet",
            "--window-frames", "5", "--window-alines", "9", "--chunk-frames", "64", "--center", "40,40"]
    assert analyze(args) == 0
    with np.load(report / "calcium_map.npz") as a, np.load(tmp_path / "calcium_map.npz") as b:
        np.testing.assert_array_equal(a["calcium"], b["calcium"])
        np.testing.assert_allclose(a["probability"], b["probability"], atol=1e-5)


def test_journal_rebuild_refilters_the_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    prob = rng.random((25, 32)).astype(np.float32)
    path = tmp_path / "live.journal.msgpack"
    writer = JournalWriter(path, {"n_alines": 32, "model": "live-model@1",
                                  "calib": {"frame_time_s": 0.05, "pullback_rate_mm_s": 2.0}})
    writer.rows(list(range(10)), [i * 0.1 for i in range(10)], prob[:10], np.zeros((10, 32), np.float32))
    writer.rows(list(range(10, 25)), [i * 0.1 for i in range(10, 25)], prob[10:], np.zeros((15, 32), np.float32))
    writer.close()
    assert analyze(["--journal", str(path), "--out", str(tmp_path / "out"), "--quiet",
                    "--window-frames", "3", "--window-alines", "5"]) == 0
    with np.load(tmp_path / "out" / "calcium_map.npz") as data:
        np.testing.assert_array_equal(data["calcium"], filter_map(prob, 3, 5))
        np.testing.assert_allclose(data["frame_position_mm"], np.arange(25) * 0.1)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["model"]["model_id"] == "live-model@1"


def test_truth_overlay_and_metrics(pullback: Path, weights: Path, tmp_path: Path) -> None:
    arcs = [[(0.0, 135.0)] if 8 <= i < 22 else [] for i in range(N_FRAMES)]
    radii = np.ones((N_FRAMES, 360), np.float32)
    truth_file = write_truth(tmp_path / "pullback.dcm", PullbackTruth(arcs, radii, radii * 2, 0.04, 5.0))
    out = tmp_path / "out"
    args = [str(pullback), "--out", str(out), "--model", str(weights), "--backend", "torch", "--quiet",
            "--window-frames", "5", "--window-alines", "9", "--center", "40,40", "--truth", str(truth_file)]
    assert analyze(args) == 0
    truth = json.loads((out / "summary.json").read_text())["truth"]
    with np.load(out / "truth_labels.npz") as z, np.load(out / "calcium_map.npz") as c:
        labels = z["calcium"]
        assert labels.shape == (N_FRAMES, 64) and labels[8:22, :24].all() and not labels[:8].any()
        tp = (c["calcium"] & labels).sum()
        dice = 2 * tp / (c["calcium"].sum() + labels.sum())
    assert truth["after_filter"]["dice"] == pytest.approx(dice)
    assert set(truth["before_filter"]) == {"accuracy", "dice", "sensitivity", "specificity"}
    assert truth["truth_summary"]["max_arc_deg"] == pytest.approx(135.0)


def test_truth_of_another_length_is_refused(
    pullback: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    radii = np.ones((5, 360), np.float32)
    truth_file = write_truth(tmp_path / "short.dcm", PullbackTruth([[]] * 5, radii, radii, 0.04, 5.0))
    args = [str(pullback), "--out", str(tmp_path / "o"), "--model", str(weights), "--backend", "torch", "--quiet",
            "--window-frames", "5", "--window-alines", "9", "--truth", str(truth_file)]
    assert analyze(args) == 2
    assert "truth covers 5 frames" in one_error_line(capsys)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_missing_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert analyze([str(tmp_path / "nope.dcm"), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "nope.dcm" in line and "not found" in line


def test_not_dicom_exits_2_with_one_line(tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "notes.dcm"
    bogus.write_text("this is not a DICOM file\n" * 20)
    assert analyze([str(bogus), "--out", str(tmp_path / "o"), "--model", str(weights), "--backend", "torch"]) == 2
    assert "notes.dcm" in one_error_line(capsys)


@pytest.mark.parametrize("args, words", [
    (["--window-frames", "12"], "window_frames"),
    (["--window-alines", "0"], "window_alines"),
])
def test_bad_windows_exit_2(
    args: list[str], words: str, pullback: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert analyze([str(pullback), "--out", str(tmp_path), *args]) == 2
    assert words in one_error_line(capsys)


def test_missing_truth_fails_before_the_analysis(
    pullback: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(pullback), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "no-model.safetensors"),
            "--truth", str(tmp_path / "absent.truth.npz")]
    assert analyze(args) == 2
    assert "absent.truth.npz" in one_error_line(capsys)  # not the missing model: truth is read first


def test_pullback_or_journal_not_both(tmp_path: Path, pullback: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert analyze(["--out", str(tmp_path)]) == 2
    assert analyze([str(pullback), "--journal", str(pullback), "--out", str(tmp_path)]) == 2


def test_dicom_flag_writes_sr_and_presentation_state_of_the_same_analysis(
    report: Path, pullback: Path, weights: Path, tmp_path: Path
) -> None:
    import highdicom as hd

    args = [str(pullback), "--out", str(tmp_path), "--model", str(weights), "--backend", "torch", "--quiet",
            "--window-frames", "5", "--window-alines", "9", "--chunk-frames", "7", "--center", "40,40", "--dicom"]
    assert analyze(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["lesions"] == json.loads((report / "summary.json").read_text())["lesions"]
    sr = hd.sr.srread(tmp_path / "calcium_sr.dcm")
    groups = sr.content.get_image_measurement_groups()
    assert len(groups) == 1 + len(summary["lesions"])
    with np.load(tmp_path / "calcium_map.npz") as data:
        calcified = int(data["calcium"].any(axis=1).sum())
    pr = pydicom.dcmread(tmp_path / "calcium_arcs_pr.dcm")
    assert len(pr.GraphicAnnotationSequence) == calcified


def test_dicom_flag_needs_the_pullback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert analyze(["--journal", str(tmp_path / "j.ivj"), "--out", str(tmp_path), "--dicom"]) == 2
    assert "--dicom needs the PULLBACK" in capsys.readouterr().err


def test_reliability_flag_reaches_summary_and_top_line(pullback: Path, weights: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from engine.model.weights import load_ensemble
    from engine.reliability import Reliability, write_reliability

    model = tmp_path / "flagged.safetensors"
    shutil.copy(weights, model)
    shutil.copy(weights.with_name("tiny.card.json"), tmp_path / "flagged.card.json")
    sha = load_ensemble(model).sha256
    write_reliability(model, Reliability(-1.0, 0.5, calibration={"weights_sha256": sha}))  # every frame flagged
    out = tmp_path / "o"
    assert analyze([str(pullback), "--out", str(out), "--model", str(model), "--backend", "torch"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reliability"]["flagged_frames"] == N_FRAMES and summary["reliability"]["pullback_flagged"]
    assert summary["reliability_notice"].startswith("UNRELIABLE")
    assert capsys.readouterr().out.splitlines()[0].endswith(summary["reliability_notice"])


def test_without_a_calibration_the_reliability_fields_are_null(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    assert summary["reliability_notice"] is None and summary["reliability"]["flagged_share"] is None
