"""Augmentations that respect IVUS geometry: small callables, composed in a list.

Each transform maps `(polar, labels, rng) -> (polar, labels)` for one frame: `polar` is a float32
tensor (depth, A) in [0, 1], `labels` a float32 tensor (A,) of per-A-line calcium, `rng` a NumPy
Generator that makes the draw reproducible. Geometric transforms move labels with the image
(rotation rolls both, angle reversal flips both); photometric ones leave labels alone. The
transforms know nothing of the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Pair = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order."""

    transforms: Sequence

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        for transform in self.transforms:
            polar, labels = transform(polar, labels, rng)
        return polar, labels


@dataclass(frozen=True)
class RandomRotation:
    """Rotate the catheter view: roll A-lines (and their labels) by a random whole number of A-lines."""

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        shift = int(rng.integers(labels.shape[-1]))
        return torch.roll(polar, shift, dims=-1), torch.roll(labels, shift, dims=-1)


@dataclass(frozen=True)
class RandomAngleFlip:
    """Mirror the frame (angle -> 360 - angle): reverse A-lines and labels, with probability `p`."""

    p: float = 0.5

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() < self.p:
            return torch.flip(polar, dims=(-1,)), torch.flip(labels, dims=(-1,))
        return polar, labels


@dataclass(frozen=True)
class RandomGainContrast:
    """Overall gain (multiply) and contrast (power law) as a different console setting would give."""

    gain: tuple[float, float] = (0.7, 1.4)
    gamma: tuple[float, float] = (0.7, 1.4)

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        gain = rng.uniform(*self.gain)
        gamma = float(np.exp(rng.uniform(np.log(self.gamma[0]), np.log(self.gamma[1]))))
        return (polar.clamp_min(0.0) ** gamma * gain).clamp(0.0, 1.0), labels


@dataclass(frozen=True)
class RandomDepthGain:
    """Time-gain compensation style ramp: multiply depth sample j by exp(slope * j / depth)."""

    slope: tuple[float, float] = (-0.6, 0.6)

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        slope = rng.uniform(*self.slope)
        ramp = torch.exp(slope * torch.linspace(0.0, 1.0, polar.shape[-2], dtype=polar.dtype))
        return (polar * ramp[:, None]).clamp(0.0, 1.0), labels


@dataclass(frozen=True)
class RandomSpeckle:
    """Multiplicative speckle-like noise with a random strength up to `max_sigma`, probability `p`;
    the noise grain is 1 to `max_grain` samples (box-smoothed), as transducers differ in speckle size."""

    max_sigma: float = 0.25
    p: float = 0.5
    max_grain: int = 1

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() >= self.p:
            return polar, labels
        sigma = rng.uniform(0.0, self.max_sigma)
        noise = torch.from_numpy(rng.standard_normal(polar.shape, dtype=np.float32))
        grain = int(rng.integers(1, self.max_grain + 1))
        if grain > 1:  # smoothing shrinks the variance by grain^2: scale back to unit variance
            noise = F.avg_pool2d(noise[None, None], grain, stride=1, padding=grain // 2,
                                 count_include_pad=False)[0, 0, : polar.shape[0], : polar.shape[1]] * grain
        return (polar * (1.0 + sigma * noise)).clamp(0.0, 1.0), labels


@dataclass(frozen=True)
class RandomNoiseFloor:
    """Additive electronic noise (a raised noise floor fills shadows and blood), probability `p`."""

    max_sigma: float = 0.06
    p: float = 0.3

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() >= self.p:
            return polar, labels
        sigma = rng.uniform(0.0, self.max_sigma)
        noise = torch.from_numpy(np.abs(rng.standard_normal(polar.shape, dtype=np.float32)))
        return (polar + sigma * noise).clamp(0.0, 1.0), labels


@dataclass(frozen=True)
class RandomAngularJitter:
    """NURD-like non-uniform rotation: a smooth monotonic warp of the A-line angle (1st + 2nd
    harmonic, up to `max_deg` degrees of displacement), applied to image (linear) and labels (nearest)."""

    max_deg: float = 8.0
    p: float = 0.5

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() >= self.p:
            return polar, labels
        n = labels.shape[-1]
        k = np.arange(n, dtype=np.float64)
        theta = 2 * np.pi * (k + 0.5) / n
        amp1, amp2 = rng.uniform(0, self.max_deg) * n / 360.0, rng.uniform(0, self.max_deg / 2) * n / 360.0
        amp1 = min(amp1, 0.9 * n / (2 * np.pi))  # keep the warp monotonic
        amp2 = min(amp2, 0.9 * n / (4 * np.pi) - amp1 / 2)
        source = (k + amp1 * np.sin(theta + rng.uniform(0, 2 * np.pi))
                  + max(amp2, 0.0) * np.sin(2 * theta + rng.uniform(0, 2 * np.pi))) % n
        lo = np.floor(source).astype(np.int64)
        frac = torch.from_numpy((source - lo).astype(np.float32))
        hi = (lo + 1) % n
        warped = polar[:, lo] * (1 - frac) + polar[:, hi] * frac
        return warped, labels[np.rint(source).astype(np.int64) % n]


@dataclass(frozen=True)
class RandomDepthScale:
    """Zoom along depth by a factor in `scale` (vessel size, catheter, calibration differences).

    A factor above 1 pushes structures deeper (the far end falls off the grid); below 1 pulls
    them in (the far end is zero, as outside the image). Labels are per angle and do not change.
    """

    scale: tuple[float, float] = (0.8, 1.2)

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        factor = rng.uniform(*self.scale)
        depth = polar.shape[-2]
        new_depth = max(1, round(depth * factor))
        scaled = F.interpolate(
            polar[None, None], size=(new_depth, polar.shape[-1]), mode="bilinear", align_corners=False
        )[0, 0]
        if new_depth >= depth:
            return scaled[:depth].contiguous(), labels
        return F.pad(scaled, (0, 0, 0, depth - new_depth)), labels


@dataclass(frozen=True)
class RandomBlur:
    """Style variety: smooth along depth (a longer pulse) and, with `lateral`, across A-lines
    (a wider beam), with probability `p`."""

    p: float = 0.3
    max_width: int = 3
    lateral: bool = False

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() >= self.p:
            return polar, labels
        width = int(rng.integers(1, self.max_width + 1))
        across = int(rng.integers(0, self.max_width)) if self.lateral else 0
        size = (2 * width + 1, 2 * across + 1)
        kernel = torch.ones(1, 1, *size, dtype=polar.dtype) / (size[0] * size[1])
        padded = F.pad(polar[None, None], (across, across, 0, 0), mode="circular") if across else polar[None, None]
        blurred = F.conv2d(padded, kernel, padding=(width, 0))[0, 0]
        return blurred, labels


def basic_augmentation() -> Compose:
    """The augmentation the current shipped model was trained with (before issue 12)."""
    return Compose([RandomRotation(), RandomAngleFlip(), RandomDepthScale(), RandomBlur(), RandomGainContrast(),
                    RandomDepthGain(), RandomSpeckle()])


def default_augmentation() -> Compose:
    """The augmentation of the `default` preset: geometry, NURD-like jitter, and appearance
    (pulse and beam blur, gain and grey curve, TGC ramp, speckle of several grain sizes, noise
    floor) wider than the simulator's standard console ranges (docs/model.md)."""
    return Compose(
        [
            RandomRotation(),
            RandomAngleFlip(),
            RandomAngularJitter(),
            RandomDepthScale(),
            RandomBlur(p=0.4, lateral=True),
            RandomGainContrast(gain=(0.6, 1.6), gamma=(0.6, 1.6)),
            RandomDepthGain(slope=(-0.8, 0.8)),
            RandomSpeckle(max_grain=3),
            RandomNoiseFloor(),
        ]
    )


AUGMENTATIONS = {"default": default_augmentation, "basic": basic_augmentation}
