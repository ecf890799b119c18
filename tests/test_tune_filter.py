"""`ivuscal tune-filter` over a small cohort of analysis folders written by the report code."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.pipeline import PipelineSettings
from engine.quantify import QuantifySettings
from engine.report import result_from_probabilities, write_report
from training.tune_filter import evaluate_window, load_cases


def noisy_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truth: one 300-degree, 40-frame lesion; probabilities: the truth with 15 % of votes flipped."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((80, 72), dtype=bool)
    truth[20:60, :60] = True
    flip = rng.random(truth.shape) < 0.15
    prob = np.where(truth ^ flip, 0.5 + 0.5 * rng.random(truth.shape), 0.5 * rng.random(truth.shape))
    return prob.astype(np.float32), truth


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    for seed in range(3):
        prob, truth = noisy_case(seed)
        result = result_from_probabilities(prob, None, 0.2, PipelineSettings(), model={"model_id": "m"})
        write_report(root / f"pullback{seed}", result, truth)
    return root


def test_grid_outputs_and_the_filter_beats_no_filter(cohort: Path, tmp_path: Path) -> None:
    args = ["tune-filter", str(cohort), "--out", str(tmp_path), "--alines", "1,9", "--frames", "1,5", "--quiet"]
    assert main(args) == 0
    with open(tmp_path / "tune_filter.csv") as handle:
        rows = {(int(r["window_alines"]), int(r["window_frames"])): r for r in csv.DictReader(handle)}
    assert set(rows) == {(1, 1), (1, 5), (9, 1), (9, 5)}
    assert float(rows[(9, 5)]["dice_pooled"]) > float(rows[(1, 1)]["dice_pooled"]) + 0.1
    assert float(rows[(9, 5)]["score_agreement"]) == 1.0  # 300 deg over 8 mm: both score 1
    assert "| 9 | 5 |" in (tmp_path / "tune_filter.md").read_text()
    assert (tmp_path / "tune_filter.png").read_bytes()[:4] == b"\x89PNG"


def test_one_by_one_window_is_the_raw_vote(cohort: Path) -> None:
    quantify = QuantifySettings()
    cases = load_cases(cohort, quantify)
    assert len(cases) == 3
    cell = evaluate_window(cases, 1, 1, quantify)
    votes = [(c.probability > 0.5, c.truth) for c in cases]
    tp = sum(int((p & t).sum()) for p, t in votes)
    wrong = sum(int((p ^ t).sum()) for p, t in votes)
    assert cell.dice_pooled == pytest.approx(2 * tp / (2 * tp + wrong))


def test_bad_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune-filter", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no analysed pullbacks with truth" in capsys.readouterr().err
    assert main(["tune-filter", str(tmp_path), "--out", str(tmp_path / "o"), "--alines", "4"]) == 2
    assert "--alines" in capsys.readouterr().err
