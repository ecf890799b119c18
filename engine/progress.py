"""Progress reporting for long work: shown on a terminal, silent otherwise or with quiet=True."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Progress:
    """A one-line progress bar on stderr; `advance(n)` after each unit of work."""

    label: str
    total: int | None
    enabled: bool
    done: int = 0
    _started: float = field(default_factory=time.monotonic)
    _last_draw: float = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.2 or (self.total and self.done >= self.total)):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {rate:.1f}/s"
        else:
            text = f"\r{self.label} {self.done} {rate:.1f}/s"
        sys.stderr.write(text)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


@contextmanager
def progress(label: str, total: int | None = None, quiet: bool = False) -> Iterator[Progress]:
    """Context manager yielding a `Progress`; enabled only when stderr is a terminal and not quiet."""
    bar = Progress(label=label, total=total, enabled=(not quiet) and sys.stderr.isatty())
    try:
        yield bar
    finally:
        bar.close()
