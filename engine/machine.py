"""What a measurement or a training run ran on: CPU model, cores, Python and library versions, load.

Benchmarks (bench/machine.py) and model cards (training/run.py) describe their machine with these.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or platform's guess elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and the installed versions of `packages` (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other users of the CPU make timings noisy)."""
    return [round(v, 2) for v in os.getloadavg()]


REPO = Path(__file__).resolve().parents[1]


def git_commit(dirty_paths: Sequence[str] = ()) -> str | None:
    """HEAD of the checkout this code runs from, with "+dirty" when files under `dirty_paths` differ
    from it; None outside a git checkout."""
    try:
        head = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--", *dirty_paths) if dirty_paths else ""
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()
