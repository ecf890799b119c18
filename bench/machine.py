"""What a benchmark ran on: CPU, cores, RAM, GPU, library versions, load and commit."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil

from engine.xp import cupy_or_none

PACKAGES = ("numpy", "scipy", "torch", "onnxruntime", "pyzmq", "cupy-cuda12x", "tensorrt")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or platform's guess elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide speed (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def gpu_name() -> str | None:
    """The first CUDA device's name when CuPy and a GPU are usable, else None."""
    cp = cupy_or_none()
    if cp is None:
        return None
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def git_commit() -> str | None:
    """The commit of the working tree the benchmark ran from, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other users of the CPU make timings noisy)."""
    return [round(v, 2) for v in os.getloadavg()]


def machine_info() -> dict:
    """A JSON-ready description of the machine, software and moment of a benchmark run."""
    memory = psutil.virtual_memory()
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(memory.total / 2**30, 1),
        "gpu": gpu_name(),
        "torch_threads": _torch_threads(),
        "versions": package_versions(),
        "load_average_start": load_average(),
        "git_commit": git_commit(),
    }


def _torch_threads() -> int:
    import torch  # noqa: PLC0415 - heavy; only when describing the machine

    return torch.get_num_threads()
