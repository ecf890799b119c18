"""`ivuscal bench batch` end to end on a tiny cohort and one local worker: well-formed results, no timing asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import validate
from engine.cli import main


@pytest.mark.slow
def test_bench_batch_reports_throughput_efficiency_and_scheduler_overhead(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["bench", "batch", "--workers", "1", "--pullbacks", "2", "--frames", "16", "--noop-tasks", "5",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    document = json.loads((out / "results.json").read_text())
    assert validate.problems(document) == []
    (scenario,) = document["scenarios"]
    (row,) = scenario["rows"]
    assert row["workers"] == 1 and row["efficiency"] == 1.0 and row["pullbacks_per_s"] > 0
    assert scenario["summary"]["scheduler_overhead_ms_per_task"] > 0
    assert scenario["settings"]["load_avg_before"] and scenario["settings"]["load_avg_after"]
