"""The benchmark harness itself: statistics, the results document and its Markdown and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import validate
from bench.machine import machine_info
from bench.monitor import ResourceMonitor
from bench.offline import OVERLAPPED
from bench.report import markdown_table, write_report
from bench.result import ScenarioResult
from bench.stats import latency_summary, linear_slope


def test_latency_summary_is_in_ms_and_ordered():
    seconds = np.linspace(0.001, 0.1, 1000)
    s = latency_summary(seconds)
    assert s["p50"] == pytest.approx(50.5, rel=1e-3)
    assert s["max"] == pytest.approx(100.0)
    assert s["n"] == 1000
    assert s["p50"] <= s["p90"] <= s["p99"] <= s["p99_9"] <= s["max"]


def test_latency_summary_refuses_no_samples():
    with pytest.raises(ValueError):
        latency_summary([])


def test_slope_of_a_line_and_of_a_flat_series():
    x = np.arange(10.0)
    assert linear_slope(x, 3 * x + 1) == pytest.approx(3.0)
    assert linear_slope(x, np.full(10, 7.0)) == pytest.approx(0.0, abs=1e-12)


def test_monitor_sees_memory_grow_and_cpu_work():
    with ResourceMonitor(interval_s=0.01) as monitor:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB touched
        block.sum()
    usage = monitor.usage
    assert usage.peak_rss_mib > 64
    assert usage.cpu_s > 0 and usage.wall_s > 0
    assert usage.rss_mib.size >= 2


def test_report_writes_valid_json_markdown_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    latencies = rng.gamma(2.0, 0.002, 500)
    result = ScenarioResult(
        "demo",
        "Demo scenario",
        settings={"frames": 500},
        rows=[{"case": "a", "p50 ms": latency_summary(latencies)["p50"], "ok": True}],
        summary={"latency": latency_summary(latencies)},
        latencies_s={"demo": latencies},
        memory={"rss": (np.arange(5.0), np.array([10.0, 10.1, 10.0, 10.2, 10.1]))},
    )
    gone = ScenarioResult("gpu", "GPU scenario", skipped="no GPU here")
    written = write_report(tmp_path, machine_info(), [result, gone])
    document = json.loads(written["json"].read_text())
    assert validate.problems(document) == []
    assert document["scenarios"][0]["plots"] == ["demo_latency_cdf.png", "demo_memory.png"]
    for name in document["scenarios"][0]["plots"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = written["markdown"].read_text()
    assert "| case | p50 ms | ok |" in markdown
    assert "Skipped: no GPU here" in markdown
    assert document["machine"]["logical_cores"] >= 1


def test_validate_catches_disordered_percentiles_and_nan():
    bad = {"p50": 5.0, "p90": 4.0, "p99": 6.0, "max": 7.0}
    document = {
        "machine": {k: 1 for k in validate.MACHINE_KEYS},
        "scenarios": [
            {"name": "x", "title": "x", "skipped": None, "settings": {}, "summary": {"lat": bad}, "rows": [{"v": None}],
             "notes": [], "plots": []}
        ],
    }
    found = validate.problems(document)
    assert any("out of order" in p for p in found)
    assert any("not a finite number" in p for p in found)


def test_markdown_table_keeps_column_order():
    lines = markdown_table([{"a": 1.23456, "b": "x"}, {"a": 1500.0, "b": "y"}])
    assert lines[0] == "| a | b |"
    assert lines[2] == "| 1.23 | x |"
    assert lines[3] == "| 1500 | y |"


def test_headline_turns_scenarios_into_advantages():
    from bench.headline import headline

    offline = ScenarioResult("offline", "o", summary={
        OVERLAPPED: {"frames_per_s": 40.0},
        "naive baseline": {"frames_per_s": 4.0},
        "naive per-frame latency ms": {"p50": 200.0},
    })
    stream = ScenarioResult("stream", "s", summary={
        "30 fps": {"engine_latency_ms": {"p50": 20.0}, "sustained_frames_per_s": 29.9},
        "60 fps": {"engine_latency_ms": {"p50": 400.0}, "sustained_frames_per_s": 35.0},
        "max": {"engine_latency_ms": {"p50": 500.0}, "sustained_frames_per_s": 36.0},
    })
    result = headline([offline, stream, ScenarioResult("filter", "f", skipped="no GPU")])
    figures = {row["figure"]: row["ours / baseline advantage"] for row in result.rows}
    assert figures["offline pipeline, frames/s (higher is better)"] == pytest.approx(10.0)
    (at30,) = [f for f in figures if "30 fps" in f]
    (at60,) = [f for f in figures if "60 fps" in f]
    assert "kept up" in at30 and figures[at30] == pytest.approx(10.0)
    assert "fell behind" in at60 and figures[at60] == pytest.approx(0.5)
    assert not any("max" in f for f in figures)
    assert headline([ScenarioResult("filter", "f", skipped="no GPU")]) is None
