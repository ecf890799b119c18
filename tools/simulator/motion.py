"""Catheter and vessel motion: heartbeat (rotation, translation, longitudinal shift,
pulsation) and non-uniform rotational distortion (NURD) of mechanical catheters.

The display angle of an A-line and the tissue angle it images are related by
`theta_t = theta_d - rotation - nurd(theta_d)`; the warp is kept monotonic so arcs map to arcs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.simulator.config import PullbackConfig


def _cardiac_wave(phase: np.ndarray) -> np.ndarray:
    """A heartbeat-shaped periodic wave in about [-1, 1]: quick systole, slow diastole."""
    return 0.75 * np.sin(phase) + 0.35 * np.sin(2 * phase + 0.8) + 0.1 * np.sin(3 * phase + 1.9)


@dataclass
class FrameMotion:
    """Per-frame motion of a batch of frames."""

    rotation_deg: np.ndarray  # (n,)
    shift_mm: np.ndarray  # (n, 2): vessel displacement (x = +column, y = +row)
    dz_mm: np.ndarray  # (n,): longitudinal catheter displacement
    scale: np.ndarray  # (n,): vessel pulsation
    nurd_amp_deg: np.ndarray  # (n, 2): amplitude of the 1st and 2nd angular harmonic
    nurd_phase: np.ndarray  # (n, 2)

    def tissue_angles(self, theta_d: np.ndarray) -> np.ndarray:
        """Tissue angle (n, A), unwrapped, imaged by each display angle `theta_d` (A,)."""
        t = np.deg2rad(theta_d)[None, :]
        warp = (self.nurd_amp_deg[:, :1] * np.sin(t + self.nurd_phase[:, :1])
                + self.nurd_amp_deg[:, 1:] * np.sin(2 * t + self.nurd_phase[:, 1:]))
        return theta_d[None, :] - self.rotation_deg[:, None] - warp


class Motion:
    """Samples the motion of a whole pullback once; `frames(idx)` reads it out per batch."""

    def __init__(self, config: PullbackConfig, rng: np.random.Generator) -> None:
        n = config.n_frames
        t = np.arange(n) / config.fps
        on = 1.0 if config.cardiac_motion else 0.0
        bpm = rng.uniform(55, 100)
        beat_jitter = np.cumsum(rng.normal(0, 0.01, n))  # heart-rate variability
        phase = 2 * np.pi * (bpm / 60.0) * t + rng.uniform(0, 2 * np.pi) + beat_jitter
        wave = _cardiac_wave(phase)
        wave2 = _cardiac_wave(phase + rng.uniform(0.5, 1.5))
        drift = np.cumsum(rng.normal(0, 0.02, n))
        drift = drift - drift.mean()
        self.rotation = on * rng.uniform(2, 12) * wave + drift * on
        amp = on * rng.uniform(0.05, 0.35)
        direction = rng.uniform(0, 2 * np.pi)
        self.shift = np.stack([amp * (np.cos(direction) * wave - 0.4 * np.sin(direction) * wave2),
                               amp * (np.sin(direction) * wave + 0.4 * np.cos(direction) * wave2)], axis=1)
        self.dz = on * rng.uniform(0.1, 0.8) * wave2
        self.scale = 1.0 + on * rng.uniform(0.0, 0.04) * wave
        self.nurd_amp, self.nurd_phase = self._nurd(config, rng, n, t)

    @staticmethod
    def _nurd(config: PullbackConfig, rng: np.random.Generator, n: int, t: np.ndarray):
        amp = np.zeros((n, 2))
        phase = np.zeros((n, 2))
        if not config.nurd_enabled:
            return amp, phase
        base = rng.uniform(0.3, 2.0)
        level = np.full(n, base)
        # episodes of strong NURD lasting a fraction of a second to two seconds
        for _ in range(rng.poisson(max(t[-1], 0.5) / 6.0)):
            centre, width = rng.uniform(0, t[-1] + 1e-9), rng.uniform(0.3, 2.0)
            level += rng.uniform(5, 14) * np.exp(-0.5 * ((t - centre) / (width / 2)) ** 2)
        slow = np.cumsum(rng.normal(0, 0.05, (n, 2)), axis=0)
        amp[:, 0] = level
        amp[:, 1] = 0.45 * level
        phase[:] = rng.uniform(0, 2 * np.pi, 2) + slow
        # monotonic warp: 1 - (a1 + 2 a2) in radians stays above 0.35
        total = np.deg2rad(amp[:, 0] + 2 * amp[:, 1])
        amp *= np.minimum(1.0, 0.65 / np.maximum(total, 1e-9))[:, None]
        return amp, phase

    def frames(self, idx: np.ndarray) -> FrameMotion:
        return FrameMotion(self.rotation[idx], self.shift[idx], self.dz[idx], self.scale[idx],
                           self.nurd_amp[idx], self.nurd_phase[idx])
