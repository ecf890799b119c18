"""Synthetic per-A-line probability maps for filter benchmarks: drifting calcium arcs plus noise."""

from __future__ import annotations

import numpy as np


def synthetic_probabilities(n_frames: int, n_alines: int = 360, seed: int = 0) -> np.ndarray:
    """(n_frames, n_alines) float32 in [0, 1]: a few arcs that wander along the pullback, noisy.

    Realistic enough that the filter has edges to decide (timings of the ring buffer do not
    depend on the values; scipy's median selection does a little).
    """
    rng = np.random.default_rng(seed)
    angles = np.arange(n_alines) * (2 * np.pi / n_alines)
    frames = np.arange(n_frames)[:, None]
    prob = np.zeros((n_frames, n_alines))
    for _ in range(3):
        centre = rng.uniform(0, 2 * np.pi) + 0.01 * frames * rng.choice([-1, 1])
        width = rng.uniform(0.3, 1.0)
        presence = np.sin(frames * rng.uniform(0.01, 0.05) + rng.uniform(0, 6)) > -0.2
        distance = np.angle(np.exp(1j * (angles[None, :] - centre)))
        prob = np.maximum(prob, presence * np.exp(-((distance / width) ** 2)))
    prob += rng.normal(0, 0.2, prob.shape)
    return np.clip(prob, 0, 1).astype(np.float32)
