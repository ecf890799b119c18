"""Reading what an `ivuscal serve` child process prints on stderr (its warnings come first)."""

from __future__ import annotations

import re
import subprocess


def stderr_line(proc: subprocess.Popen, marker: str) -> str:
    """The first stderr line of `proc` that contains `marker`; fails if the process ends before printing it."""
    while line := proc.stderr.readline():
        if marker in line:
            return line
    raise AssertionError(f"the process ended before printing {marker!r} (exit status {proc.poll()})")


def serve_endpoints(proc: subprocess.Popen) -> tuple[str, str]:
    """(frames, results) endpoints from `ivuscal serve`'s start line."""
    frames, results = re.findall(r"tcp://127\.0\.0\.1:\d+", stderr_line(proc, "ivuscal serve: frames in"))
    return frames, results
