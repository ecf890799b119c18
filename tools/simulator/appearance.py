"""Console settings and catheter-to-catheter variation: how one pullback's echoes are displayed.

Real consoles differ in gain, dynamic range (log compression), time-gain compensation, the
grey-level curve applied after compression, the electronic noise floor and the ring-down of the
catheter; catheters of one type differ in pulse length and beam width (speckle size).
`RANGES["standard"]` is the span training data is drawn from; `RANGES["stress"]` lies *outside*
it on both sides of every parameter (a stress cohort whose appearance the model has never seen).
docs/simulator.md lists the ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Interval = tuple[float, float]


@dataclass(frozen=True)
class AppearanceRanges:
    """Intervals a pullback's settings are drawn from; each parameter has one or more intervals
    (one picked at random, then a uniform draw inside it)."""

    gain_db: tuple[Interval, ...]  # overall gain added after log compression
    dynamic_range_db: tuple[Interval, ...]  # echo dB mapped onto 0..255
    tgc_fraction: tuple[Interval, ...]  # time-gain compensation as a share of the tissue attenuation
    gamma: tuple[Interval, ...]  # grey-level curve after compression: out = 255 (in / 255)^gamma
    noise_db: tuple[Interval, ...]  # electronic noise floor relative to fibrous plaque
    psf_scale: tuple[Interval, ...]  # pulse length and beam width relative to the device's
    ringdown_scale: tuple[Interval, ...]  # ring-down depth relative to the device's


RANGES: dict[str, AppearanceRanges] = {
    "standard": AppearanceRanges(
        gain_db=((-5.0, 4.0),),
        dynamic_range_db=((45.0, 65.0),),
        tgc_fraction=((0.4, 0.95),),
        gamma=((0.85, 1.2),),
        noise_db=((-43.0, -34.0),),
        psf_scale=((0.8, 1.25),),
        ringdown_scale=((0.7, 1.5),),
    ),
    "stress": AppearanceRanges(
        gain_db=((-10.0, -6.0), (5.0, 9.0)),
        dynamic_range_db=((34.0, 42.0), (68.0, 78.0)),
        tgc_fraction=((0.1, 0.3), (1.05, 1.3)),
        gamma=((0.55, 0.75), (1.3, 1.7)),
        noise_db=((-32.0, -28.0),),
        psf_scale=((0.6, 0.75), (1.35, 1.7)),
        ringdown_scale=((1.7, 2.5),),
    ),
}


@dataclass(frozen=True)
class Appearance:
    """One pullback's display settings (drawn from `RANGES`)."""

    gain_db: float
    dynamic_range_db: float
    tgc_fraction: float
    gamma: float
    noise_db: float
    ringdown_scale: float

    def gamma_table(self) -> np.ndarray:
        """uint8 lookup table (256,) of the grey-level curve."""
        levels = np.arange(256, dtype=np.float64) / 255.0
        return np.clip(np.rint(255.0 * levels**self.gamma), 0, 255).astype(np.uint8)


def draw(rng: np.random.Generator, intervals: tuple[Interval, ...]) -> float:
    """A uniform draw inside one of `intervals` (picked with probability proportional to width)."""
    widths = np.array([hi - lo for lo, hi in intervals])
    lo, hi = intervals[int(rng.choice(len(intervals), p=widths / widths.sum()))]
    return float(rng.uniform(lo, hi))


def sample_appearance(rng: np.random.Generator, name: str) -> Appearance:
    """Display settings of one pullback from the named range set."""
    ranges = RANGES[name]
    return Appearance(
        gain_db=draw(rng, ranges.gain_db),
        dynamic_range_db=draw(rng, ranges.dynamic_range_db),
        tgc_fraction=draw(rng, ranges.tgc_fraction),
        gamma=draw(rng, ranges.gamma),
        noise_db=draw(rng, ranges.noise_db),
        ringdown_scale=draw(rng, ranges.ringdown_scale),
    )
