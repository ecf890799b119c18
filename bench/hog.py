"""A CPU hog on one core: a busy-looping child process the benchmark starts and stops.

    with cpu_hog(core=0):
        ...  # the engine shares the machine with a process that never sleeps

The hog is pinned to `core` (where the OS allows affinity), so it takes one core's worth of
time as another program on a cath-lab computer would, and is killed on exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_BUSY_LOOP = "while True: pass"


@contextmanager
def cpu_hog(core: int = 0) -> Iterator[subprocess.Popen]:
    """Run a busy loop pinned to `core` for the duration of the block; yields the process."""
    pin = (lambda: os.sched_setaffinity(0, {core})) if hasattr(os, "sched_setaffinity") else None
    hog = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP], preexec_fn=pin,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait(timeout=10)
