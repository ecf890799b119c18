"""`ivuscal serve --view` and `ivuscal view` as commands: the page, its assets and /metrics over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from test_streaming_fixtures import make_ensemble, make_frames

from engine.cli import main
from tests.serve_output import stderr_line

ROOT = Path(__file__).resolve().parents[1]


def get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers.get("content-type", ""), response.read().decode()


def test_serve_with_view_serves_the_page_its_assets_and_metrics(tmp_path: Path) -> None:
    model = make_ensemble(tmp_path / "e.safetensors", make_frames(8))
    command = [sys.executable, "-m", "engine.cli", "serve", "--frames", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*"]
    command += ["--no-journal", "--backend", "torch", "--model", str(model), "--view", "127.0.0.1:0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = stderr_line(proc, "live view")
        url = re.search(r"live view (http://127\.0\.0\.1:\d+/)", line).group(1)
        assert line.rstrip().endswith(f"metrics {url}metrics")
        kind, page = get(url)
        assert kind.startswith("text/html") and "<canvas id=\"xsec\"" in page and "/static/view.js" in page
        assert "http" not in page.replace(url, "")  # nothing loaded from elsewhere
        assert "__ivuscalView" in get(url + "static/view.js")[1]
        kind, metrics = get(url + "metrics")
        assert kind.startswith("text/plain") and 'ivuscal_frames_processed_total{backend="torch"' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


@pytest.mark.parametrize("listen", ["8090", "localhost:port", "127.0.0.1:70000"])
def test_view_refuses_a_bad_listen_address(listen: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", "--listen", listen]) == 2
    assert "--listen must be HOST:PORT" in capsys.readouterr().err


def test_view_beyond_loopback_needs_insecure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", "--listen", "0.0.0.0:0"]) == 2
    assert "no authentication" in capsys.readouterr().err
    assert main(["serve", "--view", "0.0.0.0:0", "--backend", "onnxruntime", "--no-journal",
                 "--frames", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*"]) == 2
    assert "--insecure" in capsys.readouterr().err
