"""`ivuscal demo` end to end on a small pullback: live results, report files, cached pullback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from test_streaming_fixtures import make_ensemble, make_frames

from engine.cli import main


def test_demo_streams_a_generated_pullback_and_writes_the_report(tmp_path: Path, capsys) -> None:
    model = make_ensemble(tmp_path / "ensemble.safetensors", make_frames(16))
    args = ["demo", "--frames", "24", "--image-size", "128", "--fps", "60", "--backend", "torch", "--model", str(model),
            "--cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "run1"), "--quiet"]) == 0
    live = json.loads((tmp_path / "run1" / "live.json").read_text())
    assert (live["frames"], live["results"], live["dropped"], live["filled"]) == (24, 24, 0, 0)
    assert live["engine_latency"]["n"] == 24 and live["engine_latency"]["p50_ms"] > 0
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert "truth" in summary  # the simulator's truth rode along for comparison
    with np.load(tmp_path / "run1" / "calcium_map.npz") as report:
        assert report["calcium"].shape == (24, 64)
    assert "24/24 frames live" in capsys.readouterr().out
    cached = sorted((tmp_path / "cache").glob("*.dcm"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    # Over CURVE this time; the view prints a line per frame.
    assert main([*args, "--out", str(tmp_path / "run2"), "--auth", str(tmp_path / "keys")]) == 0
    assert cached[0].stat().st_mtime_ns == stamp  # the pullback came from the cache
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("demo ") and "mm |" in line for line in lines) == 24
    assert (tmp_path / "keys" / "demo.key_secret").stat().st_mode & 0o077 == 0
