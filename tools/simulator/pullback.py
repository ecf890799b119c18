"""Compose the simulator: scene -> truth; per chunk: polar rendering -> scan conversion ->
burnt-in annotations. `iter_pullback` streams frames in chunks; `simulate_pullback` keeps a
short pullback in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from tools.simulator.acoustics import PolarRenderer
from tools.simulator.annotations import Annotator
from tools.simulator.config import PullbackConfig
from tools.simulator.labelling import build_truth
from tools.simulator.scan import ScanConverter
from tools.simulator.scene import Scene
from tools.simulator.truth import PullbackTruth

MAX_IN_MEMORY_FRAMES = 4000


@dataclass(frozen=True)
class Calibration:
    """Geometry and timing of the exported frames."""

    pixel_spacing_mm: tuple[float, float]  # (row, col)
    centre_rc: tuple[int, int]  # catheter centre (row, col) in pixels
    frame_time_s: float
    pullback_rate_mm_s: float
    image_size: int


class PullbackStream:
    """A pullback being generated: truth and calibration up front, frames chunk by chunk."""

    def __init__(self, config: PullbackConfig, seed: int, chunk_frames: int = 64) -> None:
        if chunk_frames < 1:
            raise InputError(f"chunk_frames must be positive, got {chunk_frames}")
        self.config, self.seed, self.chunk_frames = config, int(seed), chunk_frames
        scene_rng, render_rng, noise_rng = (np.random.default_rng(s) for s in
                                            np.random.SeedSequence(self.seed).spawn(3))
        self.scene = Scene(config, scene_rng)
        self.truth: PullbackTruth = build_truth(self.scene, noise_rng if config.label_noise else None)
        size = config.image_size
        px = config.pixel_mm
        centre = (size // 2, size // 2)
        self.calibration = Calibration((px, px), centre, config.frame_time_s, config.pullback_rate_mm_s, size)
        self.n_depth = size // 2
        self.renderer = PolarRenderer(self.scene, config, render_rng, self.n_depth, px)
        self.scan = ScanConverter(size, config.style.n_alines, self.n_depth, px, px, centre)
        self.annotator = Annotator(config, self.calibration, seed) if config.annotations else None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        n = self.config.n_frames
        for start in range(0, n, self.chunk_frames):
            idx = np.arange(start, min(start + self.chunk_frames, n))
            yield start, self.render(idx)

    def render(self, idx: np.ndarray) -> np.ndarray:
        """Frames `idx` as uint8 (n, H, W) gray or (n, H, W, 3) RGB."""
        size = self.config.image_size
        frames = np.empty((len(idx), size, size), dtype=np.uint8)
        for i, polar in self.renderer.iter_frames(idx):
            self.scan.convert(polar, frames[i])
        if self.config.color == "rgb":
            frames = np.repeat(frames[..., None], 3, axis=-1)
        if self.annotator is not None:
            self.annotator.apply(frames, idx)
        return frames

    def polar(self, idx: np.ndarray) -> np.ndarray:
        """The polar uint8 images (n, A, D) behind frames `idx`, before scan conversion."""
        return self.renderer.render(np.asarray(idx))


@dataclass
class SimulatedPullback:
    """A whole pullback in memory."""

    frames: np.ndarray
    truth: PullbackTruth
    calibration: Calibration
    config: PullbackConfig
    seed: int


def iter_pullback(config: PullbackConfig, seed: int, chunk_frames: int = 64) -> PullbackStream:
    """A stream yielding (start_index, uint8 frames); `.truth` and `.calibration` are ready at once."""
    return PullbackStream(config, seed, chunk_frames)


def simulate_pullback(config: PullbackConfig, seed: int) -> SimulatedPullback:
    """Generate a (short) pullback fully in memory."""
    if config.n_frames > MAX_IN_MEMORY_FRAMES:
        raise InputError(f"{config.n_frames} frames is too many to keep in memory; use iter_pullback")
    stream = iter_pullback(config, seed)
    shape = (config.n_frames, config.image_size, config.image_size) + ((3,) if config.color == "rgb" else ())
    frames = np.empty(shape, dtype=np.uint8)
    for start, chunk in stream:
        frames[start:start + len(chunk)] = chunk
    return SimulatedPullback(frames, stream.truth, stream.calibration, config, int(seed))
