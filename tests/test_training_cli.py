"""`ivuscal train --preset tiny` and `ivuscal evaluate` end to end (synthetic data, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.cli import main
from engine.model.weights import load_ensemble


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("run")
    assert main(["train", "--preset", "tiny", "--work-dir", str(work), "--quiet"]) == 0
    return work


def test_train_writes_an_ensemble_with_a_complete_card(trained: Path) -> None:
    ensemble = load_ensemble(trained / "ensemble.safetensors")
    card = ensemble.card
    assert len(ensemble.models) == 5
    assert card["command"] == (
        f"ivuscal train --preset tiny --work-dir {trained} --out {trained / 'ensemble.safetensors'} --threads 2"
    )
    assert card["training"]["train_cohort"]["seed"] == 11 and card["training"]["preset"]["name"] == "tiny"
    assert sorted(card["metrics"]["per_fold"]) == ["0", "1", "2", "3", "4"]
    assert {"raw", "filtered"} <= set(card["metrics"]["out_of_fold"])
    assert {"ensemble", "mean_single", "model0"} <= set(card["metrics"]["test"])
    assert card["metrics"]["window"] == [3, 15] and card["metrics"]["study_window"]["window"] == [13, 61]
    assert {"raw", "filtered"} <= set(card["metrics"]["study_window"]["out_of_fold"])
    assert card["machine"]["cores"] >= 1 and card["time_seconds"]["total"] > 0
    assert len(card["training"]["folds"]) == 5 and card["git_commit"]


def test_rerun_resumes_instead_of_retraining(trained: Path) -> None:
    before = load_file(str(trained / "ensemble.safetensors"))
    assert main(["train", "--preset", "tiny", "--work-dir", str(trained), "--quiet"]) == 0
    after = load_file(str(trained / "ensemble.safetensors"))  # bytes may differ: metadata order is not fixed
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_evaluate_reports_members_and_ensemble(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    status = main(["evaluate", "--model", str(trained / "ensemble.safetensors"),
                   "--cache", str(trained / "test" / "cache"), "--out", str(out), "--quiet"])
    assert status == 0
    report = json.loads(out.read_text())
    assert {"model0", "model4", "ensemble", "mean_single"} <= set(report["pooled"])
    assert report["window"] == [3, 15]  # engine.filter.DEFAULT_WINDOW


def test_unknown_preset_and_even_window_are_bad_usage(trained: Path) -> None:
    assert main(["train", "--preset", "huge", "--work-dir", str(trained / "x")]) == 2
    assert main(["evaluate", "--cache", str(trained / "test" / "cache"), "--window-frames", "12"]) == 2
