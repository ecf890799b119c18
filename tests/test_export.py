"""The fused ONNX export: a valid graph with a dynamic batch that reproduces the PyTorch ensemble,
recorded in the model card, and found again by the runtimes without a second export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from engine.cli import main
from engine.errors import InputError
from engine.model.weights import LoadedEnsemble, card_path_for, ensemble_probabilities, file_sha256, load_ensemble
from engine.runtimes import create_runtime, onnx_export
from engine.runtimes.cache import onnx_for
from engine.runtimes.graph import EXPORT_VERSION, OPSET, graph_metadata
from engine.runtimes.onnx_export import OnnxExport, export_onnx
from engine.runtimes.synthetic import random_ensemble


@pytest.fixture(scope="module")
def exported(ensemble: LoadedEnsemble, model_cache: Path) -> Path:
    """The graph written by `ivuscal export` beside the weights (the one export of this module)."""
    out = ensemble.path.with_suffix(".onnx")
    assert main(["export", "--model", str(ensemble.path), "--out", str(out), "--record-in-card"]) == 0
    return out


def _polar(batch: int, seed: int) -> np.ndarray:
    """Random frames plus a bright band (calcium-like); the random ensemble votes both ways on them."""
    rng = np.random.default_rng(seed)
    polar = rng.random((batch, 128, 360), dtype=np.float32)
    start = int(rng.integers(0, 300))
    polar[:, 40:52, start : start + 60] = 0.95
    return polar


def test_export_command_records_the_graph_in_the_card(ensemble: LoadedEnsemble, exported: Path) -> None:
    card = json.loads(card_path_for(ensemble.path).read_text())
    command = card["onnx"].pop("command")
    assert card["onnx"] == {"file": exported.name, "sha256": file_sha256(exported), "opset": OPSET, "precision": "fp32",
                            "export_version": EXPORT_VERSION}
    assert command.startswith("ivuscal export --model ") and command.endswith("--record-in-card")
    assert load_ensemble(ensemble.path).sha256 == ensemble.sha256  # the card still vouches for the weights


def test_graph_is_valid_with_a_dynamic_batch(ensemble: LoadedEnsemble, exported: Path) -> None:
    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    (polar,) = model.graph.input
    dims = polar.type.tensor_type.shape.dim
    assert polar.name == "polar" and polar.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [128, 360]
    assert [o.name for o in model.graph.output] == ["probability", "spread"]
    assert graph_metadata(exported)["ivuscal.weights_sha256"] == ensemble.sha256


@pytest.mark.parametrize("batch", [1, 4])
def test_graph_reproduces_the_pytorch_ensemble(ensemble: LoadedEnsemble, exported: Path, batch: int) -> None:
    import onnxruntime as ort

    polar = _polar(batch, seed=batch)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    probability, spread = session.run(None, {"polar": polar})
    ref_prob, ref_spread = (t.numpy() for t in ensemble_probabilities(ensemble.models, torch.from_numpy(polar)))
    assert probability.shape == spread.shape == (batch, 360)
    assert np.abs(probability - ref_prob).max() <= 1e-4
    assert np.abs(spread - ref_spread).max() <= 1e-4
    differ = (probability > 0.5) != (ref_prob > 0.5)
    assert not np.any(differ & (np.abs(ref_prob - 0.5) > 1e-3))
    assert 0 < (ref_prob > 0.5).mean() < 1  # the check saw both votes


def test_runtime_uses_the_graph_named_in_the_card(ensemble: LoadedEnsemble, exported: Path, model_cache: Path) -> None:
    runtime = create_runtime("onnxruntime", ensemble.path)
    assert runtime.onnx_path == exported


def test_export_without_the_flag_touches_no_model_file(ensemble: LoadedEnsemble, tmp_path: Path) -> None:
    for source in (ensemble.path, card_path_for(ensemble.path)):
        shutil.copy(source, tmp_path / source.name)
    weights = tmp_path / ensemble.path.name
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["export", "--model", str(weights), "--out", str(tmp_path / "graphs" / "g.onnx")]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert [p.name for p in (tmp_path / "graphs").iterdir()] == ["g.onnx"]  # and no .partial left


def _copy_with_graph(ensemble: LoadedEnsemble, exported: Path, folder: Path) -> Path:
    for source in (ensemble.path, card_path_for(ensemble.path), exported):
        shutil.copy(source, folder / source.name)
    return folder / ensemble.path.name


def test_a_changed_card_graph_is_refused_naming_the_file(ensemble: LoadedEnsemble, exported: Path,
                                                         tmp_path: Path) -> None:
    weights = _copy_with_graph(ensemble, exported, tmp_path)
    graph = tmp_path / exported.name
    graph.write_bytes(exported.read_bytes()[:-10])  # truncated: hash differs
    with pytest.raises(InputError, match="does not match the model card"):
        onnx_for(load_ensemble(weights))
    graph.unlink()
    with pytest.raises(InputError, match="missing") as missing:
        onnx_for(load_ensemble(weights))
    assert str(graph) in str(missing.value)


def test_without_a_card_graph_the_runtime_exports_into_the_cache_once(ensemble: LoadedEnsemble, exported: Path,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for source in (ensemble.path, card_path_for(ensemble.path)):
        shutil.copy(source, tmp_path / source.name)
    card_file = card_path_for(tmp_path / ensemble.path.name)
    card = json.loads(card_file.read_text())
    del card["onnx"]
    card_file.write_text(json.dumps(card))
    copy = load_ensemble(tmp_path / ensemble.path.name)
    monkeypatch.setenv("IVUSCAL_CACHE", str(tmp_path / "cache"))
    exports = []

    def export_into_cache(ens: LoadedEnsemble, out: Path, precision: str, layout: str) -> OnnxExport:
        """Stands in for the 10-40 s export: the same weights give the same graph."""
        assert layout == "wide"
        exports.append(out)
        shutil.copy(exported, out)
        return OnnxExport(out, file_sha256(out), OPSET, precision, 0.0, 0.0)

    monkeypatch.setattr(onnx_export, "export_onnx", export_into_cache)
    path = onnx_for(copy)
    assert path.parent == tmp_path / "cache" / "onnx" and path.is_file()
    assert onnx_for(copy) == path and len(exports) == 1  # second call: a cache hit, same file


def test_shipped_model_carries_a_current_graph_that_reproduces_it() -> None:
    """Fails after a change to how graphs are built (EXPORT_VERSION bumped) until the shipped graph is
    regenerated: ivuscal export --out engine/model/default/ensemble.onnx --record-in-card"""
    import onnxruntime as ort

    shipped = load_ensemble(None)
    entry = shipped.card["onnx"]
    assert (entry["file"], entry["opset"], entry["export_version"]) == ("ensemble.onnx", OPSET, EXPORT_VERSION)
    graph = onnx_for(shipped)
    assert graph == shipped.path.parent / "ensemble.onnx" and file_sha256(graph) == entry["sha256"]
    polar = _polar(2, seed=7)
    probability, _ = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, {"polar": polar})
    reference, _ = ensemble_probabilities(shipped.models, torch.from_numpy(polar))
    assert np.abs(probability - reference.numpy()).max() <= 1e-4


def test_unknown_precision_is_an_input_error(ensemble: LoadedEnsemble, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="precision"):
        export_onnx(ensemble, tmp_path / "x.onnx", precision="int8")


def test_export_command_reports_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.safetensors"
    assert main(["export", "--model", str(missing), "--out", str(tmp_path / "x.onnx")]) == 2
    assert str(missing) in capsys.readouterr().err


@pytest.mark.slow
def test_fp16_graph_for_tensorrt_stays_close_to_fp32(tmp_path: Path) -> None:
    """The graph TensorRT's fp16 engine is built from: half-precision members, float32 in and out.

    ONNX Runtime runs it on the CPU too, which checks the graph itself without a GPU."""
    import onnxruntime as ort

    small = random_ensemble(tmp_path / "two.safetensors", n_members=2, seed=3)
    export = export_onnx(small, tmp_path / "two-fp16.onnx", precision="fp16")
    model = onnx.load(str(export.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    polar = _polar(2, seed=5)
    session = ort.InferenceSession(str(export.path), providers=["CPUExecutionProvider"])
    probability, _ = session.run(None, {"polar": polar})
    ref_prob, _ = ensemble_probabilities(small.models, torch.from_numpy(polar))
    assert np.abs(probability - ref_prob.numpy()).max() <= 2e-2
