"""The naive baseline: PyTorch eager, one model after another per frame, and the 61 x 13 filter
recomputed from scratch over the trailing window for every frame (scipy median_filter).

This is what a first, straightforward implementation looks like; the benchmark reports the
engine's figures as ratios to it.
"""

from __future__ import annotations

from collections import deque
from types import ModuleType
from typing import Any

import numpy as np
import scipy.ndimage
import torch

from engine.model.network import CalciumNet


class EagerEnsemble:
    """The members run one after another on one frame (batch 1), in PyTorch eager mode.

    `threads` sets PyTorch's intra-op threads (process-wide), to match the runtime compared.
    """

    def __init__(self, models: list[CalciumNet], threads: int | None = None) -> None:
        self.models = [m.eval() for m in models]
        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()

    @torch.inference_mode()
    def infer_frame(self, polar: np.ndarray) -> np.ndarray:
        """One polar frame (D, A) float32 -> mean calcium probability (A,) float32."""
        x = torch.from_numpy(np.ascontiguousarray(polar, dtype=np.float32))[None, None]
        total = torch.zeros(polar.shape[-1])
        for model in self.models:
            total += torch.sigmoid(model(x))[0]
        return (total / len(self.models)).numpy()


class RecomputingFilter:
    """The majority filter recomputed per frame: median over the trailing window, from scratch.

    Each push keeps the newest `window_frames` probability rows, pads them by wrapping along
    A-lines (and repeats frame 0 before the start, docs/conventions.md), runs a full median filter
    over that block and keeps its centre row: the final output of frame `t - window_frames // 2`.
    `ndimage` is `scipy.ndimage` or `cupyx.scipy.ndimage` matching `xp`.
    """

    def __init__(
        self, window_frames: int = 13, window_alines: int = 61, xp: ModuleType = np, ndimage: ModuleType = scipy.ndimage
    ) -> None:
        self.window_frames = window_frames
        self.window_alines = window_alines
        self.xp = xp
        self.ndimage = ndimage
        self._rows: deque = deque(maxlen=window_frames)
        self._t = 0

    def push(self, prob_row: Any) -> tuple[int, Any] | None:
        """Add frame t; return (t - h, its final bool row) once that frame's window exists."""
        xp, wf, g = self.xp, self.window_frames, self.window_alines // 2
        h = wf // 2
        self._rows.append(xp.asarray(prob_row, dtype=xp.float32))
        t = self._t
        self._t += 1
        if t < h:
            return None
        rows = [self._rows[0]] * (wf - len(self._rows)) + list(self._rows)  # frame 0 repeated before the start
        block = xp.pad(xp.stack(rows), ((0, 0), (g, g)), mode="wrap")
        median = self.ndimage.median_filter(block, size=(wf, self.window_alines))
        return t - h, median[h, g : block.shape[1] - g] > 0.5
