"""The runtime-only install: `ivuscal analyze` and `ivuscal serve` on ONNX Runtime with torch, onnx
and onnxscript impossible to import (a `sys.meta_path` blocker in a fresh interpreter), using the
graph that ships beside the default weights. Their results equal those of the full install."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import zmq
from test_streaming_fixtures import CALIB, make_frames, start

from engine.cli import main
from engine.streaming import protocol as p
from engine.streaming.subscriber import subscribe
from tests.dicom_factory import ivus_frames, write_pullback
from tests.serve_output import serve_endpoints

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "onnx", "onnxscript")
BLOCKER = f"""
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, _Blocked())
from engine.cli import main
status = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.partition(".")[0] in {BLOCKED!r})
assert not leaked, leaked
sys.exit(status)
"""


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", BLOCKER, *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_the_blocker_really_blocks_torch() -> None:
    code = BLOCKER.split("from engine.cli")[0] + "import torch\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 1 and "blocked by the test" in done.stderr


def test_analyze_runs_on_onnxruntime_without_torch(tmp_path: Path) -> None:
    pullback = write_pullback(tmp_path / "p.dcm", ivus_frames(12, rows=96, cols=96))
    args = [str(pullback), "--backend", "onnxruntime", "--threads", "1", "--quiet"]
    done = subprocess.run(_command("analyze", *args, "--out", str(tmp_path / "no-torch")),
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert main(["analyze", *args, "--out", str(tmp_path / "full")]) == 0
    with np.load(tmp_path / "no-torch" / "calcium_map.npz") as a, np.load(tmp_path / "full" / "calcium_map.npz") as b:
        np.testing.assert_array_equal(a["probability"], b["probability"])
        np.testing.assert_array_equal(a["calcium"], b["calcium"])
    summary = json.loads((tmp_path / "no-torch" / "summary.json").read_text())
    assert summary["model"]["backend"] == "onnxruntime"
    assert summary == json.loads((tmp_path / "full" / "summary.json").read_text())


def test_serve_runs_on_onnxruntime_without_torch(tmp_path: Path) -> None:
    frames = make_frames(10)
    command = _command("serve", "--frames", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*",
                       "--journal-dir", str(tmp_path / "j"), "--backend", "onnxruntime", "--threads", "1",
                       "--heartbeat", "0.1")
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=_env())
    context = zmq.Context()
    events: list[dict] = []
    live, stop = threading.Event(), threading.Event()
    try:
        frames_endpoint, results_endpoint = serve_endpoints(proc)
        listener = threading.Thread(target=subscribe,
                                    args=(results_endpoint, lambda e: (events.append(e), live.set()), stop),
                                    kwargs={"summaries": 1, "timeout_s": 120, "context": context})
        listener.start()
        assert live.wait(60)
        sender = context.socket(zmq.PUSH)
        sender.connect(frames_endpoint)
        sender.send_multipart(p.encode_start(start(n_frames=10)))
        for i in range(10):
            sender.send_multipart(p.encode_frame("s1", "pb1", i, i, 0.0, "cartesian", CALIB, frames[i]), copy=False)
        sender.send_multipart(p.encode_end(p.PullbackEnd("s1", "pb1", 10)))
        listener.join(timeout=120)
        sender.close(linger=0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        stop.set()
        proc.kill()
        context.term()
    results = [e for e in events if e.get("kind") == "result"]
    summaries = [e for e in events if e.get("kind") == "summary"]
    assert [r["frame"] for r in results] == list(range(10))
    assert len(summaries) == 1 and summaries[0]["complete"] and summaries[0]["n_frames"] == 10


@pytest.mark.parametrize("blocked", [("torch",)])
def test_runtime_import_chain_stays_free_of_torch(blocked: tuple[str, ...]) -> None:
    code = BLOCKER.split("from engine.cli")[0] + (
        "import engine.runtimes.ort_backend, engine.runtimes.cache, engine.commands.analyze, engine.streaming.server\n"
        f"assert not [m for m in sys.modules if m.partition('.')[0] in {blocked!r}]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
