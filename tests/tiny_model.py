"""A small pullback with a calcium-like arc and a tiny random ensemble tuned to vote calcium on about a fifth
of its A-lines: a real model run in a second, for tests of whole commands (analyze, dicom-node)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.geometry import PolarSampler
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import save_ensemble

SPEC = InputSpec(n_alines=64, n_depth=32, depth_spacing_mm=0.1)
SIZE = 80
CENTER_RC = (40.0, 40.0)
PIXEL_SPACING_MM = 0.05


def calcium_frames(n_frames: int = 30, arc_frames: tuple[int, int] = (8, 22), seed: int = 1) -> np.ndarray:
    """uint8 (n_frames, 80, 80) noise with a bright 135-degree ring segment on frames arc_frames[0]..[1]-1."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 100, (n_frames, SIZE, SIZE), dtype=np.uint8)
    rr, cc = np.mgrid[0:SIZE, 0:SIZE]
    angle = np.mod(np.degrees(np.arctan2(rr - CENTER_RC[0], cc - CENTER_RC[1])), 360)
    radius = np.hypot(rr - CENTER_RC[0], cc - CENTER_RC[1]) * PIXEL_SPACING_MM
    img[arc_frames[0]:arc_frames[1], (angle < 135) & (radius > 1.0) & (radius < 2.0)] = 255
    return img


def tiny_ensemble(path: Path, frames: np.ndarray) -> Path:
    """Two small random members, logits shifted so that about a fifth of `frames`' A-lines vote calcium."""
    torch.manual_seed(0)
    # the original stem (depth stride 2): on a 32-sample grid the stride-4 default leaves one depth cell
    # at the last level
    config = NetConfig(channels=(4, 4, 8, 8), decoder_channels=8, stem_depth_stride=2, stem_depth_kernel=5)
    members = [CalciumNet(config).eval() for _ in range(2)]
    sampler = PolarSampler((SIZE, SIZE), CENTER_RC, (PIXEL_SPACING_MM, PIXEL_SPACING_MM), SPEC)
    x = torch.from_numpy(sampler(frames)[:, None])
    with torch.no_grad():
        for m in members:
            logits = m(x)
            m.head.weight.div_(logits.std())
            m.head.bias.sub_(torch.quantile(m(x), 0.8))
    return save_ensemble(path, members, SPEC, {"name": "tiny-test"}).path
