"""Batches of frames from a polar cache: which frames, and how they are read and augmented."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from training.cache import PolarCache

Transform = Callable[[Tensor, Tensor, np.random.Generator], tuple[Tensor, Tensor]]


def frame_indices(cache: PolarCache, pullbacks: Sequence[int], stride: int = 1, offset: int = 0) -> np.ndarray:
    """(M, 2) int array of (pullback, frame) pairs: every `stride`-th frame starting at `offset`.

    Neighbouring frames are nearly identical, so training takes every 2nd or 3rd; a different
    `offset` each epoch still visits all of them over time.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    rows = [
        np.stack([np.full(len(frames), p), frames], axis=1)
        for p in pullbacks
        if len(frames := np.arange(offset % stride, cache.pullbacks[p].n_frames, stride)) > 0
    ]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), dtype=np.int64)


def with_hard_negatives(cache: PolarCache, rows: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """`rows` plus extra draws of its hard-negative frames (confounders that mimic calcium), so that
    about `share` of the result comes from them on top of their natural share; unchanged when the
    cache records none."""
    if share <= 0 or len(rows) == 0:
        return rows
    hard = np.zeros(len(rows), dtype=bool)
    for p in np.unique(rows[:, 0]):
        frames = cache.hard_frames(int(p))
        if frames is not None:
            at = rows[:, 0] == p
            hard[at] = frames[rows[at, 1]]
    if not hard.any():
        return rows
    extra = rng.choice(np.flatnonzero(hard), size=int(round(share * len(rows))), replace=True)
    return np.concatenate([rows, rows[extra]])


def load_frames(cache: PolarCache, rows: np.ndarray) -> tuple[Tensor, Tensor]:
    """Frames (B, D, A) float32 in [0, 1] and labels (B, A) float32 for (pullback, frame) rows."""
    polar = np.stack([cache.polar(int(p))[int(f)] for p, f in rows])
    labels = np.stack([cache.labels(int(p))[int(f)] for p, f in rows])
    return torch.from_numpy(polar.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.float32))


def batches(
    cache: PolarCache,
    rows: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    transform: Transform | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (x (B, 1, D, A), y (B, A)); shuffled and augmented when `rng` is given."""
    order = rng.permutation(len(rows)) if rng is not None else np.arange(len(rows))
    for start in range(0, len(order), batch_size):
        chunk = rows[order[start : start + batch_size]]
        polar, labels = load_frames(cache, chunk)
        if transform is not None and rng is not None:
            pairs = [transform(polar[i], labels[i], rng) for i in range(len(chunk))]
            polar = torch.stack([p for p, _ in pairs])
            labels = torch.stack([y for _, y in pairs])
        yield polar.unsqueeze(1), labels
