"""Resource use of a process while a benchmark runs: CPU share and resident memory over time."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import psutil


@dataclass
class ResourceUsage:
    """CPU and memory of one process over a measured interval."""

    wall_s: float
    cpu_s: float
    rss_mib: np.ndarray  # sampled resident set size
    t_s: np.ndarray  # sample times from the start
    extra: list[float] = field(default_factory=list)  # caller's value per sample (e.g. frames done)

    @property
    def cpu_percent(self) -> float:
        """Process CPU time over wall time, in percent of one core (200 = two cores busy)."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def peak_rss_mib(self) -> float:
        return float(self.rss_mib.max()) if self.rss_mib.size else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "cpu_percent": self.cpu_percent,
            "peak_rss_mib": self.peak_rss_mib,
            "samples": int(self.rss_mib.size),
        }


class ResourceMonitor:
    """Sample a process's RSS every `interval_s` on a background thread; CPU from its times.

    Use as a context manager; `usage` is set on exit. `counter` (optional, no arguments) is
    read at each sample and kept in `usage.extra`, e.g. the number of frames processed so far.
    """

    def __init__(self, pid: int | None = None, interval_s: float = 0.05, counter=None) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.counter = counter
        self.usage: ResourceUsage | None = None
        self._stop = threading.Event()
        self._times: list[float] = []
        self._rss: list[float] = []
        self._extra: list[float] = []
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def _sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
        except psutil.Error:  # the watched process ended
            return
        self._times.append(time.perf_counter() - self._t0)
        self._rss.append(rss / 2**20)
        if self.counter is not None:
            self._extra.append(float(self.counter()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> Self:
        self._t0 = time.perf_counter()
        self._cpu0 = self._cpu()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.perf_counter() - self._t0
        try:
            cpu = self._cpu() - self._cpu0
        except psutil.Error:
            cpu = float("nan")
        self.usage = ResourceUsage(wall, cpu, np.asarray(self._rss), np.asarray(self._times), self._extra)
