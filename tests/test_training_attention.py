"""Attention zones around the calcium leading edge: shares add up, the uniform reference is geometric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from training.attention_profile import attention_zones
from training.cache import CacheWriter

SPEC = InputSpec(n_alines=64, n_depth=64, depth_spacing_mm=0.08)


def test_zone_shares_and_uniform_reference(tmp_path) -> None:
    polar = np.full((2, 64, 64), 0.1, np.float32)
    polar[:, 20, 8:24] = 1.0  # leading edge at depth 20 on A-lines 8..23
    labels = np.zeros((2, 64), bool)
    labels[:, 8:24] = True
    writer = CacheWriter(tmp_path, SPEC)
    writer.add("pb", "p", polar, labels)
    cache = writer.close()
    torch.manual_seed(0)
    # stem stride 2: on this 64-sample grid the last level keeps 4 depth cells, and this seed's
    # Grad-CAM is not all zero (a random network's can be, with the stride-4 default on so small a grid)
    config = NetConfig(channels=(4, 8, 8, 8), decoder_channels=8, stem_depth_stride=2, stem_depth_kernel=5)
    model = CalciumNet(config).eval()
    result = attention_zones([model], cache, [(0, 0), (0, 1)], edge_halfwidth=4)
    assert result["a_lines"] == 32
    assert sum(result["attention"].values()) == pytest.approx(1.0)
    # depth 0..15 in front, 16..24 at the edge, 25..63 behind
    assert result["uniform"] == pytest.approx({"front": 16 / 64, "edge": 9 / 64, "shadow": 39 / 64})
