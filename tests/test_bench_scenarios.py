"""Offline, runtime and soak scenarios end to end on a tiny pullback and a tiny random ensemble.

Real components throughout (DICOM file, the PyTorch runtime, the pipeline); only the sizes are
small. ONNX Runtime is left out here because its first use exports the graph (tens of seconds on
a loaded CPU); the runtimes' own tests cover it. Timings are never asserted, only that the results
are well formed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import runtime_compare, soak, validate
from bench.offline import IN_TURN, OVERLAPPED
from engine.cli import main
from engine.model.spec import InputSpec
from engine.runtimes import create_runtime
from engine.runtimes.synthetic import random_ensemble
from tests.dicom_factory import ivus_frames, write_pullback

TINY_SPEC = InputSpec(n_alines=64, n_depth=32, depth_spacing_mm=0.04)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(weights path, loaded ensemble, pullback path) shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("bench")
    ensemble = random_ensemble(folder / "tiny.safetensors", n_members=2, spec=TINY_SPEC)
    pullback = write_pullback(folder / "tiny.dcm", ivus_frames(24, 64, 64), pixel_spacing_mm=0.04)
    return ensemble.path, ensemble, pullback


def _document(out):
    document = json.loads((out / "results.json").read_text())
    assert validate.problems(document) == []
    return document


def test_offline_command_compares_with_the_baseline(tiny, tmp_path):
    weights, _, pullback = tiny
    out = tmp_path / "offline"
    argv = ["bench", "offline", "--pullback", str(pullback), "--weights", str(weights), "--frames", "24",
            "--baseline-frames", "16", "--backend", "torch", "--device", "cpu", "--chunk", "8",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    (scenario,) = _document(out)["scenarios"]
    passes = [row["pass"] for row in scenario["rows"]]
    assert passes == [IN_TURN, OVERLAPPED, "naive baseline", "ratio ours / baseline"]
    assert scenario["summary"][IN_TURN]["frames"] == 24 and scenario["summary"][OVERLAPPED]["frames"] == 24
    assert scenario["summary"]["naive baseline"]["frames"] == 16
    assert set(scenario["summary"][IN_TURN]["stage_seconds"]) == {"decode", "polar", "inference", "filter", "quantify"}
    assert scenario["summary"]["ratios_to_baseline"]["frames_per_s (overlapped, as analyze)"] > 0
    assert scenario["summary"]["naive per-frame latency ms"]["n"] == 16
    assert (out / "offline_latency_cdf.png").is_file()
    assert "| ratio ours / baseline |" in (out / "results.md").read_text()


def test_runtimes_rows_or_reasons_for_every_backend(tiny):
    _, ensemble, _ = tiny
    backends = (("torch", "cpu"), ("tensorrt", "cuda"))
    result = runtime_compare.run(ensemble, "tiny", backends, batches=(1, 3), frames=3)
    labels = {row["runtime"] for row in result.rows}
    assert "torch (cpu)" in labels
    assert "tensorrt (cuda)" in labels or any(note.startswith("tensorrt (cuda): not run here") for note in result.notes)
    batches = sorted(row["batch"] for row in result.rows if row["runtime"] == "torch (cpu)")
    assert batches == [1, 3]
    for row in result.rows:
        assert np.isfinite(row["frames/s"]) and row["frames/s"] > 0
        assert row["call p50 ms"] <= row["call p99 ms"]


@pytest.mark.slow
def test_runtimes_levers_time_each_cpu_lever_at_batch_1(tiny, model_cache):
    _, ensemble, _ = tiny
    result = runtime_compare.run(ensemble, "tiny", (("onnxruntime", "cpu"),), batches=(1,), frames=3, levers=True)
    levers = [row for row in result.rows if row["runtime"].startswith("lever: ")]
    assert len(levers) == 4 and all(row["batch"] == 1 and row["frames/s"] > 0 for row in levers)
    assert any("members in turn" in row["runtime"] for row in levers)
    assert any("network shipped before issue 15" in row["runtime"] for row in levers)


def test_soak_samples_memory_over_consecutive_pullbacks(tiny, tmp_path):
    _, ensemble, pullback = tiny
    runtime = create_runtime("torch", model=ensemble, device="cpu")
    result = soak.run(pullback, runtime, "tiny", frames=40, pullback_frames=16, batch=8, interval_s=0.01)
    assert result.summary["frames"] == 40
    assert result.summary["pullbacks"] == 3  # 16 + 16 + 8
    frames_axis, rss = result.memory["RSS"]
    assert frames_axis.size == rss.size >= 2
    assert np.all(np.diff(frames_axis) >= 0) and frames_axis[-1] == 40
    assert np.isfinite(result.summary["rss_slope_mib_per_1000_frames"])


def test_soak_command_writes_memory_plot(tiny, tmp_path):
    weights, _, pullback = tiny
    out = tmp_path / "soak"
    argv = ["bench", "soak", "--frames", "32", "--pullback-frames", "16", "--batch", "8", "--pullback", str(pullback),
            "--weights", str(weights), "--backend", "torch", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    (scenario,) = _document(out)["scenarios"]
    assert scenario["plots"] == ["soak_memory.png"]
    assert (out / "soak_memory.png").read_bytes()[:4] == b"\x89PNG"


def test_streams_scenario_reports_memory_per_pullback_and_refuses_jumps(tiny):
    from bench import streams
    from engine.runtimes import create_runtime

    weights, _, _ = tiny
    runtime = create_runtime("torch", model=weights, threads=1)
    result = streams.run(runtime, "tiny", ids=(6, 12), wave=3, image_size=64)
    document = {"machine": {}, "scenarios": [{**result.to_dict(), "plots": []}]}  # plots: added by the report
    found = validate.problems(document)
    assert [problem for problem in found if not problem.startswith("machine")] == []
    assert result.summary["open_streams_in_last_heartbeat"] == 0
    assert {"rss_after_6_ids_mib", "rss_after_12_ids_mib", "memory_per_open_pullback_mib"} <= set(result.summary)
    assert [(j["frame"], j["code"]) for j in result.summary["jumps"]] == [(20_000, "jump"), (20_000_000, "jump")]
