"""The filter scenario on tiny windows: both filters timed, their outputs compared, results valid."""

from __future__ import annotations

import json

import numpy as np

from bench import validate
from bench.filter_speed import run
from bench.naive import RecomputingFilter
from bench.probabilities import synthetic_probabilities
from engine.cli import main
from engine.filter import filter_map


def test_recomputing_filter_equals_the_reference_filter():
    prob = synthetic_probabilities(20, 48, seed=3)
    naive = RecomputingFilter(5, 9)
    finals = dict(out for out in (naive.push(row) for row in prob) if out is not None)
    reference = filter_map(prob, 5, 9)
    assert sorted(finals) == list(range(18))  # the last h frames need the end of the pullback
    for index, row in finals.items():
        np.testing.assert_array_equal(row, reference[index])


def test_filter_scenario_rows_agree_and_are_positive():
    result = run(frames=24, n_alines=48, windows=((3, 5), (5, 9)), recompute_seconds=5.0)
    assert [row["window (A-lines x frames)"] for row in result.rows] == ["5x3", "9x5"]
    for row in result.rows:
        assert row["outputs agree"] is True
        assert row["ring frames/s"] > 0 and row["recompute frames/s"] > 0
    assert result.summary["9x5"]["compared_frames"] == 24 - 2


def test_bench_filter_command_writes_results(tmp_path):
    out = tmp_path / "res"
    status = main(["bench", "filter", "--frames", "12", "--window", "3", "5", "--recompute-seconds", "1", "--out",
                   str(out), "--quiet"])
    assert status == 0
    document = json.loads((out / "results.json").read_text())
    assert validate.problems(document) == []
    assert (out / "results.md").read_text().count("| 5x3 |") == 1
    assert (out / "filter_latency_cdf.png").read_bytes()[:4] == b"\x89PNG"


def test_cupy_filter_runs_on_a_gpu_or_says_why_not(tmp_path):
    out = tmp_path / "gpu"
    argv = ["bench", "filter", "--xp", "cupy", "--frames", "12", "--window", "3", "5", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    (scenario,) = json.loads((out / "results.json").read_text())["scenarios"]
    if scenario["skipped"]:
        assert "CUDA GPU" in scenario["skipped"]
    else:
        assert all(row["outputs agree"] for row in scenario["rows"])
