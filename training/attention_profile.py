"""Where the attention sits relative to the calcium's leading edge: in front, at it, or in the shadow.

For each calcified A-line (truth) of the frames scored, the leading edge is the depth of the
brightest polar sample (calcium is the strongest reflector along its A-line). The ensemble's
Grad-CAM (`CalciumNet.attention_map`, upsampled to the polar grid) is read along the A-line
relative to that edge and its mass split into three zones: in front of the edge (lumen, soft
plaque), at the edge (within `edge_halfwidth` samples), and behind it (the acoustic shadow).
The same split of a uniform attention is given as the chance reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.commands.explain import upsample_attention
from engine.model.network import CalciumNet
from training.cache import PolarCache

ZONES = ("front", "edge", "shadow")


def attention_zones(
    models: Sequence[CalciumNet], cache: PolarCache, frames: Sequence[tuple[int, int]], edge_halfwidth: int = 8
) -> dict:
    """{"attention": {zone: share}, "uniform": {zone: share}, "a_lines": n} over (pullback, frame) pairs."""
    mass = dict.fromkeys(ZONES, 0.0)
    uniform = dict.fromkeys(ZONES, 0.0)
    n_alines = 0
    depth = np.arange(cache.spec.n_depth)
    for pullback, frame in frames:
        truth = cache.labels(pullback)[frame]
        if not truth.any():
            continue
        polar = torch.from_numpy(cache.polar(pullback)[frame].astype(np.float32) / 255.0)[None, None]
        target = torch.from_numpy(truth[None])
        cams = torch.stack([m.attention_map(polar, target)[1] for m in models]).mean(dim=0)
        attention = upsample_attention(cams, cache.spec)[0].numpy()[:, truth]
        edge = polar[0, 0].numpy()[:, truth].argmax(axis=0)
        offset = depth[:, None] - edge[None, :]
        zones = {"front": offset < -edge_halfwidth, "edge": np.abs(offset) <= edge_halfwidth,
                 "shadow": offset > edge_halfwidth}
        for zone, where in zones.items():
            mass[zone] += float(attention[where].sum())
            uniform[zone] += float(where.sum())
        n_alines += int(truth.sum())
    total, total_uniform = sum(mass.values()) or 1.0, sum(uniform.values()) or 1.0
    return {
        "attention": {z: mass[z] / total for z in ZONES},
        "uniform": {z: uniform[z] / total_uniform for z in ZONES},
        "a_lines": n_alines,
    }
