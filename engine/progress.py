"""Progress reporting for long work (tqdm): shown on a terminal, silent otherwise or with quiet=True."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


class Progress:
    """A one-line bar on stderr; `advance(n)` after each `n` units of work."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar
        self.enabled = not bar.disable
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)


@contextmanager
def progress(label: str, total: int | None = None, quiet: bool = False) -> Iterator[Progress]:
    """Context manager yielding a `Progress`; drawn only when stderr is a terminal and not quiet."""
    enabled = not quiet and sys.stderr.isatty()
    with tqdm(total=total, desc=label, file=sys.stderr, disable=not enabled, mininterval=0.2,
              dynamic_ncols=True) as bar:
        yield Progress(bar)
