"""The wide fused ensemble (members as grouped convolutions) against the members run one by one.

BatchNorm folded into the convolution weights changes float32 rounding: agreement to 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch

from engine.model.network import CalciumNet, NetConfig
from engine.model.weights import ensemble_probabilities
from engine.runtimes.fused import FusedEnsemble, WideCalciumNet
from engine.runtimes.synthetic import random_ensemble


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[CalciumNet]:
    return random_ensemble(tmp_path_factory.mktemp("fused") / "e.safetensors", n_members=5, seed=3).models


def _polar(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 128, 360, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("batch", [1, 3])
def test_wide_layout_equals_the_reference(members: list[CalciumNet], batch: int) -> None:
    polar = _polar(batch, seed=batch)
    ref_prob, ref_spread = ensemble_probabilities(members, polar)
    with torch.no_grad():
        prob, spread = FusedEnsemble(members, layout="wide").eval()(polar)
    torch.testing.assert_close(prob, ref_prob, atol=1e-5, rtol=0)
    torch.testing.assert_close(spread, ref_spread, atol=1e-5, rtol=0)


def test_each_wide_row_is_its_member(members: list[CalciumNet]) -> None:
    """Row m of the wide logits is member m's logits: no member mixes with another's channels."""
    x = _polar(2, seed=7).unsqueeze(1)
    with torch.no_grad():
        wide = WideCalciumNet(members).eval()(x)
        for m, member in enumerate(members):
            torch.testing.assert_close(wide[:, m], member(x), atol=1e-4, rtol=0)  # logits ~ N(0, 2)


def test_members_that_normalise_differently_get_their_own_input(members: list[CalciumNet]) -> None:
    """The stem is a grouped convolution over per-member normalised inputs when means or stds differ."""
    changed = [copy.deepcopy(m) for m in members]
    changed[2].input_mean.fill_(0.3)
    changed[4].input_std.fill_(0.2)
    polar = _polar(2, seed=11)
    wide = FusedEnsemble(changed, layout="wide").eval()
    assert not wide.wide.shared_input and wide.wide.stem.conv.groups == len(changed)
    with torch.no_grad():
        prob, spread = wide(polar)
    ref_prob, ref_spread = ensemble_probabilities(changed, polar)
    torch.testing.assert_close(prob, ref_prob, atol=1e-5, rtol=0)
    torch.testing.assert_close(spread, ref_spread, atol=1e-5, rtol=0)


def test_other_channel_widths_fuse_too(tmp_path) -> None:
    config = NetConfig(channels=(16, 16, 32, 32), decoder_channels=16)
    models = random_ensemble(tmp_path / "w.safetensors", n_members=3, seed=1, config=config).models
    polar = _polar(2, seed=5)
    with torch.no_grad():
        prob, _ = FusedEnsemble(models).eval()(polar)
    torch.testing.assert_close(prob, ensemble_probabilities(models, polar)[0], atol=1e-5, rtol=0)


def test_unknown_layout_is_refused(members: list[CalciumNet]) -> None:
    with pytest.raises(ValueError, match="layout"):
        FusedEnsemble(members, layout="diagonal")
