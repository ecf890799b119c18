"""Ensemble files: safetensors round trip, model card bound to its weights, the shipped default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.errors import InputError
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import (
    card_path_for,
    ensemble_probabilities,
    file_sha256,
    load_ensemble,
    save_ensemble,
)

SMALL = NetConfig(channels=(4, 8, 8, 8), decoder_channels=8)


def _members(n: int = 3) -> list[CalciumNet]:
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(CalciumNet(SMALL).eval())
    return models


def test_round_trip_reproduces_every_member(tmp_path: Path) -> None:
    models = _members()
    path = tmp_path / "ens.safetensors"
    save_ensemble(path, models, InputSpec(), {"name": "t"})
    loaded = load_ensemble(path)
    x = torch.rand(2, 128, 360)
    assert loaded.net_config == SMALL and loaded.spec == InputSpec() and len(loaded.models) == 3
    for a, b in zip(models, loaded.models, strict=True):
        with torch.no_grad():
            assert torch.equal(a(x[:, None]), b(x[:, None]))
    torch.testing.assert_close(ensemble_probabilities(models, x), ensemble_probabilities(loaded.models, x))


def test_card_records_the_hash_of_its_weights(tmp_path: Path) -> None:
    path = tmp_path / "ens.safetensors"
    save_ensemble(path, _members(), InputSpec(), {"name": "t"})
    card = json.loads(card_path_for(path).read_text())
    assert card["weights_sha256"] == file_sha256(path)
    assert card["n_members"] == 3 and card["architecture"]["config"]["channels"] == [4, 8, 8, 8]


def test_equal_weights_give_byte_identical_files(tmp_path: Path) -> None:
    models = _members()
    hashes = {save_ensemble(tmp_path / f"ens{i}.safetensors", models, InputSpec(), {}).sha256 for i in range(4)}
    assert len(hashes) == 1  # the header's metadata map is written in a fixed order


def test_tampered_weights_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ens.safetensors"
    save_ensemble(path, _members(), InputSpec(), {})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match"):
        load_ensemble(path)


def test_not_a_safetensors_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="junk.safetensors"):
        load_ensemble(path)


def test_shipped_default_loads_and_documents_itself() -> None:
    ensemble = load_ensemble(None)
    card = ensemble.card
    assert len(ensemble.models) == 5
    assert card["weights_sha256"] == ensemble.sha256
    assert card["command"].startswith("ivuscal train --preset default")
    assert set(card["metrics"]["per_fold"]) == {"0", "1", "2", "3", "4"}
    for key in ("out_of_fold", "test"):
        assert key in card["metrics"]
    assert card["machine"]["cores"] >= 1 and card["time_seconds"]["total"] > 0
    assert ensemble.path.stat().st_size < 5_000_000
