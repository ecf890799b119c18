"""A corrupt or mismatching model file stops a command with exit status 2 and one line naming the file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import DEFAULT_WEIGHTS, card_path_for, save_ensemble
from tests.dicom_factory import ivus_frames, write_pullback


@pytest.fixture(scope="module")
def pullback(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pullback(tmp_path_factory.mktemp("dicom") / "p.dcm", ivus_frames(4))


@pytest.fixture()
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    models = [CalciumNet(NetConfig(channels=(4, 4, 8, 8), decoder_channels=8)).eval() for _ in range(2)]
    path = tmp_path / "model" / "ens.safetensors"
    save_ensemble(path, models, InputSpec(n_alines=64, n_depth=32, depth_spacing_mm=0.1), {"name": "t"})
    return path


def _truncate_card(weights: Path) -> Path:
    card = card_path_for(weights)
    card.write_bytes(card.read_bytes()[:40])
    return card


def _card_for_other_weights(weights: Path) -> Path:
    card = card_path_for(weights)
    data = json.loads(card.read_text())
    data["weights_sha256"] = "0" * 64
    card.write_text(json.dumps(data))
    return card


def _truncate_weights(weights: Path) -> Path:
    weights.write_bytes(weights.read_bytes()[:-100])
    return weights


def _garbage_header(weights: Path) -> Path:
    data = bytearray(weights.read_bytes())
    data[8:24] = b"{not json at all"
    weights.write_bytes(bytes(data))
    return weights


@pytest.mark.parametrize("damage", [_truncate_card, _card_for_other_weights, _truncate_weights, _garbage_header])
@pytest.mark.parametrize("command", ["analyze", "export"])
def test_damaged_model_files_exit_2_naming_the_file(damage: Callable[[Path], Path], command: str, weights: Path,
                                                    pullback: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    named = damage(weights)
    args = {
        "analyze": ["analyze", str(pullback), "--out", str(tmp_path / "out"), "--backend", "torch", "--quiet"],
        "export": ["export", "--out", str(tmp_path / "g.onnx")],
    }[command]
    assert main([*args, "--model", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(named) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "g.onnx").exists()


def test_a_shipped_graph_that_differs_from_its_card_exits_2_naming_the_graph(
    pullback: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("ensemble.safetensors", "ensemble.card.json", "ensemble.onnx"):
        shutil.copy(DEFAULT_WEIGHTS.parent / name, folder / name)
    graph = folder / "ensemble.onnx"
    graph.write_bytes(graph.read_bytes()[:-64])
    args = ["analyze", str(pullback), "--out", str(tmp_path / "out"), "--backend", "onnxruntime", "--quiet"]
    assert main([*args, "--model", str(folder / "ensemble.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(graph) in err and "sha256 differs" in err
