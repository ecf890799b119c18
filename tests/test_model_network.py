"""CalciumNet: shapes, circular rotation equivariance, determinism, attention map, cost."""

from __future__ import annotations

import pytest
import torch

from engine.model.network import (
    PREVIOUS_CONFIG,
    CalciumNet,
    NetConfig,
    count_parameters,
    flops_per_frame,
)
from engine.model.spec import InputSpec


def _net(seed: int = 0) -> CalciumNet:
    torch.manual_seed(seed)
    net = CalciumNet(NetConfig())
    # non-trivial BatchNorm statistics, so that eval mode is not an identity normalisation
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(4, 1, 64, 96))
    return net.eval()


def test_logits_per_aline_float32() -> None:
    net = _net()
    x = torch.rand(3, 1, 128, 360)
    logits = net(x)
    assert logits.shape == (3, 360) and logits.dtype == torch.float32
    levels = net.encode(x)
    assert [tuple(f.shape[2:]) for f in levels] == [(32, 360), (16, 180), (8, 90), (4, 45)]


@pytest.mark.parametrize("shift", [8, 16, 120, 352])
def test_rotation_by_multiple_of_8_alines_rotates_logits_exactly(shift: int) -> None:
    net = _net()
    x = torch.rand(2, 1, 128, 360)
    with torch.no_grad():
        rotated_then_net = net(torch.roll(x, shift, dims=-1))
        net_then_rotated = torch.roll(net(x), shift, dims=-1)
    torch.testing.assert_close(rotated_then_net, net_then_rotated, atol=1e-5, rtol=1e-5)


def test_rotation_by_other_shift_is_only_approximate() -> None:
    # three stride-2 angle downsamplings: a 3 A-line shift changes the sampling phase
    net = _net()
    x = torch.rand(2, 1, 128, 360)
    with torch.no_grad():
        diff = (net(torch.roll(x, 3, dims=-1)) - torch.roll(net(x), 3, dims=-1)).abs().max()
    assert diff > 1e-4


def test_same_seed_same_network_same_output() -> None:
    x = torch.rand(2, 1, 128, 360)
    a, b = _net(seed=5), _net(seed=5)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert torch.equal(a(x), a(x))
    with torch.no_grad():
        assert not torch.equal(a(x), _net(seed=6)(x))


def test_attention_map_is_normalised_on_the_last_encoder_grid() -> None:
    net = _net()
    x = torch.rand(2, 1, 128, 360)
    logits, cam = net.attention_map(x)
    assert logits.shape == (2, 360)
    assert cam.shape == (2, 4, 45)
    assert float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-6
    with torch.no_grad():
        torch.testing.assert_close(logits, net(x))


def test_small_enough_for_real_time() -> None:
    net = CalciumNet()
    assert 30_000 < count_parameters(net) < 60_000
    assert 30e6 < flops_per_frame(net, InputSpec()) < 50e6


def test_weights_saved_before_the_stem_was_configurable_read_as_the_original_stem() -> None:
    legacy = NetConfig.from_dict({"channels": [8, 16, 24, 32], "decoder_channels": 24})
    assert legacy == PREVIOUS_CONFIG
    stem = CalciumNet(legacy).stem.conv
    assert stem.kernel_size == (5, 3) and stem.stride == (2, 1)
    assert NetConfig.from_dict(NetConfig().to_dict()) == NetConfig()


def test_previous_network_keeps_its_grid_and_cost() -> None:
    net = CalciumNet(PREVIOUS_CONFIG).eval()
    levels = net.encode(torch.rand(1, 1, 128, 360))
    assert [tuple(f.shape[2:]) for f in levels] == [(64, 360), (32, 180), (16, 90), (8, 45)]
    assert flops_per_frame(net, InputSpec()) == 61_833_600
