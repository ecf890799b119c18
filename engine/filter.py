"""The post-processing majority filter over frames x A-lines in streaming (ring-buffer) form.

Definition (docs/conventions.md): vote `b = p > 0.5`; pad `b` by wrapping along A-lines and by
repeating the first/last frame along frames; frame `i`, A-line `k` is calcified when more than
half of the `window_frames x window_alines` cells centred on it are calcified.

Streaming form. Let `h = window_frames // 2`. The edge-padded vote sequence along frames is
`q[j] = b[clip(j - h, 0, n - 1)]`; frame `c` uses `q[c .. c + 2h]`. A ring buffer holds the last
`window_frames` rows of `q` with running per-A-line counts over them, so each pushed frame costs
O(A) whatever the window size:
- FINAL output of frame `t - h` as soon as frame `t` arrives (exact; the last `h` frames come
  out of `flush()`, which appends the repeated last frame);
- PROVISIONAL output of frame `t`: the same filter as if the pullback ended at `t`, i.e. the
  counts over `q[t .. t + h]` plus `h` copies of frame `t`'s vote.
The sum over A-lines is circular: a cumulative sum of the counts evaluated at wrapped indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from engine.errors import InputError

Row = Any  # a 1-D bool array of the filter's namespace (numpy.ndarray or cupy.ndarray)

# Windows as (frames, A-lines). The study post-processed with 13 frames x 61 A-lines; on the
# simulator's realistic lesions that window closes the gaps between calcium plates and trims
# arcs, and a 3 x 15 window keeps the filter's job (isolated specks and one-frame blips) at
# almost no cost, so it is the default since issue 12 (docs/analysis.md, "Filter window").
STUDY_WINDOW = (13, 61)
DEFAULT_WINDOW = (3, 15)


@dataclass(frozen=True)
class FilterStep:
    """What one pushed frame yields: newly final frames and the provisional newest frame."""

    final: list[tuple[int, Row]]
    provisional: tuple[int, Row]


def check_window(name: str, value: int) -> int:
    """`value` as an int when it is a positive odd integer, else InputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1 or value % 2 == 0:
        raise InputError(f"{name} must be a positive odd integer, got {value!r}")
    return int(value)


class StreamingCalciumFilter:
    """Causal ring-buffer form of the majority filter over frames x A-lines.

    `push(prob_row)` takes frame `t`'s averaged probabilities (A,) and returns a `FilterStep`;
    `flush()` ends the pullback and returns the remaining final frames; `reset()` starts a new
    pullback. Output rows are new bool arrays of namespace `xp`; all working buffers are
    allocated once, at construction.
    """

    def __init__(self, n_alines: int, window_frames: int = DEFAULT_WINDOW[0], window_alines: int = DEFAULT_WINDOW[1],
                 xp: ModuleType = np) -> None:
        if isinstance(n_alines, bool) or not isinstance(n_alines, (int, np.integer)) or n_alines < 1:
            raise InputError(f"n_alines must be a positive integer, got {n_alines!r}")
        self.n_alines = int(n_alines)
        self.window_frames = check_window("window_frames", window_frames)
        self.window_alines = check_window("window_alines", window_alines)
        self.xp = xp
        self.half_frames = self.window_frames // 2
        # Calcified when count > cells / 2; cells is odd, so count > cells // 2.
        self._threshold = (self.window_frames * self.window_alines) // 2
        a = self.n_alines
        self._ring = xp.zeros((self.window_frames, a), dtype=xp.int32)
        self._full = xp.zeros(a, dtype=xp.int32)  # counts over the last window_frames rows of q
        self._half = xp.zeros(a, dtype=xp.int32)  # counts over the last h + 1 rows of q
        self._vote = xp.zeros(a, dtype=xp.int32)
        self._work = xp.zeros(a, dtype=xp.int32)
        self._cumsum = xp.zeros(a + 1, dtype=xp.int64)
        self._gather_hi = xp.zeros(a, dtype=xp.int64)
        self._gather_lo = xp.zeros(a, dtype=xp.int64)
        # Circular window [k - g, k + g]: F(n) = sum of c[j mod A] for j < n = (n // A) * total + P[n % A].
        g = self.window_alines // 2
        k = np.arange(a)
        hi, lo = k + g + 1, k - g
        self._hi_index = xp.asarray(np.mod(hi, a))
        self._lo_index = xp.asarray(np.mod(lo, a))
        self._wraps = xp.asarray(np.floor_divide(hi, a) - np.floor_divide(lo, a))
        self.reset()

    def reset(self) -> None:
        """Forget the current pullback; the next push is frame 0 of a new one."""
        self._ring[...] = 0
        self._full[...] = 0
        self._half[...] = 0
        self._appended = 0  # rows of q appended so far
        self._n_frames = 0
        self._flushed = False

    @property
    def frames_pushed(self) -> int:
        return self._n_frames

    def push(self, prob_row: Any) -> FilterStep:
        """Add the next frame's probabilities; return newly final frames and the provisional one."""
        if self._flushed:
            raise InputError("filter already flushed; call reset() before a new pullback")
        if getattr(prob_row, "shape", None) != (self.n_alines,):
            raise InputError(
                f"probability row must have shape ({self.n_alines},), got {getattr(prob_row, 'shape', None)}"
            )
        xp = self.xp
        xp.greater(xp.asarray(prob_row), 0.5, out=self._vote)
        t = self._n_frames
        self._n_frames += 1
        final: list[tuple[int, Row]] = []
        copies = self.half_frames + 1 if t == 0 else 1  # frame 0 also stands for the h padding rows
        for _ in range(copies):
            final.extend(self._append(self._vote))
        # provisional(t) = counts over q[t .. t + h] + h copies of frame t's vote
        xp.multiply(self._vote, self.half_frames, out=self._work)
        xp.add(self._work, self._half, out=self._work)
        return FilterStep(final=final, provisional=(t, self._decide(self._work)))

    def flush(self) -> list[tuple[int, Row]]:
        """End the pullback: the last `h` frames, with the last frame repeated as padding."""
        if self._flushed or self._n_frames == 0:
            self._flushed = True
            return []
        last = self._ring[(self._appended - 1) % self.window_frames].copy()
        final: list[tuple[int, Row]] = []
        for _ in range(self.half_frames):
            final.extend(self._append(last))
        self._flushed = True
        return final

    def _append(self, vote: Any) -> list[tuple[int, Row]]:
        """Append one row of q; return the frame whose window it completes, if any."""
        xp = self.xp
        j = self._appended
        wf, h = self.window_frames, self.half_frames
        if j >= wf:
            xp.subtract(self._full, self._ring[j % wf], out=self._full)
        if j >= h + 1:
            xp.subtract(self._half, self._ring[(j - h - 1) % wf], out=self._half)
        self._ring[j % wf] = vote
        xp.add(self._full, vote, out=self._full)
        xp.add(self._half, vote, out=self._half)
        self._appended = j + 1
        frame = j - 2 * h
        if 0 <= frame < self._n_frames:
            return [(frame, self._decide(self._full))]
        return []

    def _decide(self, counts: Any) -> Row:
        """Circular window sum over A-lines of per-A-line counts, compared with half the cells."""
        xp = self.xp
        xp.cumsum(counts, out=self._cumsum[1:])
        total = self._cumsum[-1]
        xp.take(self._cumsum, self._hi_index, out=self._gather_hi)
        xp.take(self._cumsum, self._lo_index, out=self._gather_lo)
        window = self._gather_hi - self._gather_lo + self._wraps * total
        return window > self._threshold


def filter_map(prob_map: Any, window_frames: int = DEFAULT_WINDOW[0], window_alines: int = DEFAULT_WINDOW[1],
               xp: ModuleType | None = None) -> Any:
    """Filter a whole (frames, A) probability map; bool (frames, A) in namespace `xp`."""
    if getattr(prob_map, "ndim", None) != 2:
        raise InputError(f"probability map must be 2-D (frames, A-lines), got shape {getattr(prob_map, 'shape', None)}")
    if xp is None:
        from engine.xp import namespace_of

        xp = namespace_of(prob_map)
    prob_map = xp.asarray(prob_map)
    n_frames, n_alines = prob_map.shape
    out = xp.zeros((n_frames, n_alines), dtype=bool)
    filt = StreamingCalciumFilter(n_alines, window_frames, window_alines, xp=xp)
    for row in prob_map:
        for index, calcium in filt.push(row).final:
            out[index] = calcium
    for index, calcium in filt.flush():
        out[index] = calcium
    return out
