"""An easy polar-space task for smoke tests and the `tiny` preset: bright arcs with shadows.

Each frame: dark lumen, a speckled vessel wall, and optionally one calcified arc (a bright band
at the wall followed by an acoustic shadow) whose extent drifts slowly along the pullback. A
narrow guidewire (bright spot with shadow, not calcium) appears in every frame. This is not the
IVUS simulator: it exists so that training code can be tested in seconds without one.
"""

from __future__ import annotations

import numpy as np

from engine.model.spec import InputSpec


def synthetic_pullback(rng: np.random.Generator, n_frames: int,
                       spec: InputSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Polar frames float32 (n_frames, depth, A) in [0, 1] and calcium labels bool (n_frames, A)."""
    spec = spec or InputSpec()
    depth, n_alines = spec.n_depth, spec.n_alines
    j = np.arange(depth)[:, None]
    angles = np.arange(n_alines)
    lumen = rng.uniform(0.2, 0.35) * depth
    has_calcium = rng.random() < 0.7
    centre = rng.uniform(0, n_alines)
    half_width = rng.uniform(0.08, 0.3) * n_alines
    wire = rng.uniform(0, n_alines)
    polar = np.empty((n_frames, depth, n_alines), np.float32)
    labels = np.zeros((n_frames, n_alines), bool)
    for i in range(n_frames):
        phase = i / max(1, n_frames - 1)
        wall = np.exp(-np.clip(j - lumen, 0, None) / (0.35 * depth)) * (j > lumen) * 0.45
        frame = wall * rng.gamma(4.0, 0.25, size=(depth, n_alines)) + 0.03
        if has_calcium and 0.15 < phase < 0.85:
            width = half_width * np.sin(np.pi * (phase - 0.15) / 0.7)
            inside = np.abs((angles - centre + n_alines / 2) % n_alines - n_alines / 2) < width
            edge = int(lumen + 4)
            frame[edge : edge + 3, inside] = 0.95
            frame[edge + 3 :, inside] *= 0.15
            labels[i] = inside
        near_wire = np.abs((angles - wire + n_alines / 2) % n_alines - n_alines / 2) < 2
        frame[int(lumen * 0.5) : int(lumen * 0.5) + 2, near_wire] = 0.9
        frame[int(lumen * 0.5) + 2 :, near_wire] *= 0.1
        polar[i] = np.clip(frame, 0.0, 1.0)
    return polar, labels
