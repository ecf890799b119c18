"""The end-to-end scenario over real ZeroMQ sockets: `ivuscal serve` in a child process, a real
replay and subscriber, on a tiny pullback and a tiny random ensemble."""

from __future__ import annotations

import json

from bench import validate
from engine.cli import main
from engine.model.spec import InputSpec
from engine.runtimes.synthetic import random_ensemble
from tests.dicom_factory import ivus_frames, write_pullback


def test_stream_command_reports_latency_per_rate(tmp_path):
    weights = random_ensemble(tmp_path / "tiny.safetensors", n_members=2, spec=InputSpec(64, 32, 0.04)).path
    pullback = write_pullback(tmp_path / "tiny.dcm", ivus_frames(20, 64, 64), pixel_spacing_mm=0.04)
    out = tmp_path / "stream"
    argv = ["bench", "stream", "--pullback", str(pullback), "--weights", str(weights), "--backend", "torch",
            "--rate", "60", "--rate", "max", "--hog", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    document = json.loads((out / "results.json").read_text())
    assert validate.problems(document) == []
    (scenario,) = document["scenarios"]
    assert [row["rate"] for row in scenario["rows"]] == ["60 fps", "max", "30 fps + CPU hog", "60 fps + CPU hog"]
    for row in scenario["rows"]:
        assert row["sent"] == 20
        assert row["results"] + row["dropped"] == 20
        assert row["engine p50 ms"] <= row["engine p99 ms"] <= row["engine max ms"]
        assert row["source-to-result p50 ms"] <= row["source-to-result p99 ms"] <= row["source-to-result max ms"]
        assert row["server peak RSS MiB"] > 0
    first = scenario["summary"]["60 fps"]
    assert first["latency_warmup_results_skipped"] == 10  # the engine process's first inferences
    assert first["engine_latency_ms"]["n"] == scenario["rows"][0]["results"] - 10
    assert scenario["summary"]["max"]["engine_latency_ms"]["n"] == scenario["rows"][1]["results"]
    assert first["compute_ms"]["p50"] <= first["engine_latency_ms"]["max"]
    assert (out / "stream_latency_cdf.png").is_file()


def test_stream_rejects_a_zero_rate(tmp_path):
    assert main(["bench", "stream", "--rate", "0", "--out", str(tmp_path), "--quiet"]) == 2


def test_stream_names_the_servers_complaint_about_its_backend(tmp_path, capsys):
    weights = random_ensemble(tmp_path / "tiny.safetensors", n_members=1, spec=InputSpec(64, 32, 0.04)).path
    pullback = write_pullback(tmp_path / "tiny.dcm", ivus_frames(16, 64, 64), pixel_spacing_mm=0.04)
    argv = ["bench", "stream", "--pullback", str(pullback), "--weights", str(weights), "--backend", "no-such-backend",
            "--rate", "max", "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    assert "no-such-backend" in capsys.readouterr().err


def test_stream_passes_the_device_to_the_server(tmp_path, capsys):
    """`--device` reaches `ivuscal serve`: ONNX Runtime refuses CUDA there, and the bench says so."""
    weights = random_ensemble(tmp_path / "tiny.safetensors", n_members=1, spec=InputSpec(64, 32, 0.04)).path
    pullback = write_pullback(tmp_path / "tiny.dcm", ivus_frames(16, 64, 64), pixel_spacing_mm=0.04)
    argv = ["bench", "stream", "--pullback", str(pullback), "--weights", str(weights), "--backend", "onnxruntime",
            "--device", "cuda", "--rate", "max", "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    assert "runs on the CPU" in capsys.readouterr().err


def test_cpu_hog_is_pinned_busy_and_stopped():
    import os
    import time

    import psutil

    from bench.hog import cpu_hog

    with cpu_hog(core=0) as hog:
        process = psutil.Process(hog.pid)
        if hasattr(os, "sched_getaffinity"):
            assert os.sched_getaffinity(hog.pid) == {0}
        deadline = time.monotonic() + 60
        while sum(process.cpu_times()[:2]) < 0.5 and time.monotonic() < deadline:  # more than interpreter start-up
            time.sleep(0.1)
        assert sum(process.cpu_times()[:2]) >= 0.5  # it keeps using CPU: busy, not waiting
    assert hog.poll() is not None  # killed and reaped when the block ends
