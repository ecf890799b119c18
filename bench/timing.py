"""Wall-clock accounting of pipeline stages, with an optional device synchronisation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
_END = object()


class StageClock:
    """Accumulates seconds per named stage: `with clock("polar"): ...`.

    `sync` (e.g. a CUDA stream synchronise) runs before each stage ends, so asynchronous device
    work is charged to the stage that launched it.
    """

    def __init__(self, stages: tuple[str, ...], sync: Callable[[], None] | None = None) -> None:
        self.stages = stages
        self.seconds = {name: 0.0 for name in stages}
        self._sync = sync or (lambda: None)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[stage] += time.perf_counter() - t0

    def timed(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """Yield from `items`, charging the time spent producing each one to `stage`."""
        iterator = iter(items)
        while True:
            with self(stage):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item

    @property
    def total(self) -> float:
        return sum(self.seconds.values())
