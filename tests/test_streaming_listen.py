"""`ivuscal listen`: the arc bar, the per-frame line, and --record over a real engine."""

from __future__ import annotations

import threading
from pathlib import Path

import msgpack
from click.testing import CliRunner
from test_streaming_fixtures import loopback, make_ensemble, make_frames, start

from tools.listen import arc_bar, command, format_event
from tools.replay import send_pullback


def test_arc_bar_marks_the_cells_inside_each_arc() -> None:
    assert arc_bar([], width=8) == "........"
    assert arc_bar([[0.0, 360.0, 360.0]], width=8) == "########"
    assert arc_bar([[90.0, 180.0, 90.0]], width=8) == "..##...."
    assert arc_bar([[315.0, 45.0, 90.0]], width=8) == "#......#"  # across 0 degrees: one arc at both ends


def test_result_line_shows_frame_position_arc_and_lesion_status() -> None:
    event = {"kind": "result", "stream": "s", "frame": 12, "position_mm": 2.4,
             "provisional": {"arcs": [[0.0, 90.0, 90.0]], "total_arc_deg": 90.0, "calcified": True},
             "lesion": {"lesions_closed": 1, "in_calcium": True}}
    line = format_event(event, width=4)
    assert line == "s    12    2.40 mm |#...|  90.0 deg  lesions 1 IN CALCIUM"
    assert format_event({"kind": "heartbeat"}) is None


def test_listen_records_what_it_receives(tmp_path: Path) -> None:
    frames = make_frames(10, seed=5)
    model = make_ensemble(tmp_path / "ensemble.safetensors", frames)
    record = tmp_path / "events.msgpack"
    with loopback(model, tmp_path) as engine:
        runner = CliRunner()
        outcome: dict = {}
        argv = ["--from", engine.results_endpoint, "--record", str(record), "--summaries", "1", "--timeout", "30",
                "--final"]
        listener = threading.Thread(target=lambda: outcome.update(result=runner.invoke(command, argv)))
        listener.start()
        for _ in range(100):  # bounded: wait until the listener's subscription is live (it records heartbeats)
            if record.exists() and record.stat().st_size:
                break
            threading.Event().wait(0.1)
        send_pullback(engine.sender(), [(0, frames)], start(n_frames=10), fps=None)
        listener.join(timeout=60)
    result = outcome["result"]
    assert result.exit_code == 0, result.output
    assert sum(" mm |" in line and "FINAL" not in line for line in result.output.splitlines()) == 10
    assert sum(line.endswith("FINAL") for line in result.output.splitlines()) == 10
    with open(record, "rb") as handle:
        events = list(msgpack.Unpacker(handle, raw=False))
    assert [e["frame"] for e in events if e["kind"] == "result"] == list(range(10))
    assert events[-1]["kind"] == "summary"

