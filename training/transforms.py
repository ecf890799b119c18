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
    """Multiplicative speckle-like noise with a random strength up to `max_sigma`, probability `p`."""

    max_sigma: float = 0.25
    p: float = 0.5

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() >= self.p:
            return polar, labels
        sigma = rng.uniform(0.0, self.max_sigma)
        noise = torch.from_numpy(rng.standard_normal(polar.shape, dtype=np.float32))
        return (polar * (1.0 + sigma * noise)).clamp(0.0, 1.0), labels


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
        scaled = F.interpolate(polar[None, None], size=(new_depth, polar.shape[-1]), mode="bilinear", align_corners=False)[0, 0]
        if new_depth >= depth:
            return scaled[:depth].contiguous(), labels
        return F.pad(scaled, (0, 0, 0, depth - new_depth)), labels


@dataclass(frozen=True)
class RandomBlur:
    """Style variety: smooth along depth (a softer transducer) with probability `p`."""

    p: float = 0.3
    max_width: int = 3

    def __call__(self, polar: Tensor, labels: Tensor, rng: np.random.Generator) -> Pair:
        if rng.random() >= self.p:
            return polar, labels
        width = int(rng.integers(1, self.max_width + 1))
        kernel = torch.ones(1, 1, 2 * width + 1, 1, dtype=polar.dtype) / (2 * width + 1)
        blurred = F.conv2d(polar[None, None], kernel, padding=(width, 0))[0, 0]
        return blurred, labels


def default_augmentation() -> Compose:
    """The augmentation used to train the shipped model."""
    return Compose(
        [
            RandomRotation(),
            RandomAngleFlip(),
            RandomDepthScale(),
            RandomBlur(),
            RandomGainContrast(),
            RandomDepthGain(),
            RandomSpeckle(),
        ]
    )
