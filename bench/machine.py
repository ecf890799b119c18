"""What a benchmark ran on: CPU, cores, RAM, GPU, library versions, load and commit."""

from __future__ import annotations

import datetime as dt
import platform

import psutil

from engine.machine import cpu_model, git_commit, load_average, package_versions
from engine.xp import cupy_or_none

__all__ = ["PACKAGES", "gpu_name", "git_commit", "load_average", "machine_info"]

PACKAGES = ("numpy", "scipy", "torch", "onnxruntime", "pyzmq", "cupy-cuda12x", "tensorrt")


def gpu_name() -> str | None:
    """The first CUDA device's name when CuPy and a GPU are usable, else None."""
    cp = cupy_or_none()
    if cp is None:
        return None
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


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
        "versions": package_versions(PACKAGES),
        "load_average_start": load_average(),
        "git_commit": git_commit(),
    }


def _torch_threads() -> int:
    import torch  # heavy; only when describing the machine

    return torch.get_num_threads()
