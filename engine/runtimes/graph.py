"""The fused ONNX graph: its interface, and the copy that ships beside the weights (no torch, no onnx).

Input `polar` float32 (B, D, A) in [0, 1]; outputs `probability` and `spread` float32 (B, A)
(engine/runtimes/onnx_export.py builds it). A model may carry its graph: the model card's
`onnx` entry names the file (relative to the card), its SHA-256, opset, precision and the export
version that wrote it. `card_graph` returns that file after checking its hash, so the ONNX
Runtime backend runs the shipped model with neither torch nor onnx installed. Regenerate the
shipped graph after changing how graphs are built (bump `EXPORT_VERSION` there) with

    ivuscal export --out engine/model/default/ensemble.onnx --record-in-card
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError
from engine.model.weights import card_path_for, file_sha256, read_card, write_card

if TYPE_CHECKING:
    from engine.model.weights import LoadedEnsemble

log = logging.getLogger(__name__)

OPSET = 18
EXPORT_VERSION = 2  # bump when the exported graph changes for the same weights (the cache key and the card check)
INPUT_NAME = "polar"
OUTPUT_NAMES = ("probability", "spread")
REGENERATE = "ivuscal export --model WEIGHTS --out GRAPH.onnx --record-in-card"


def card_graph(ensemble: LoadedEnsemble, precision: str = "fp32") -> Path | None:
    """The graph the model card names for `precision`, hash-checked; None when the card names none
    (or one of another opset or export version, which the caller re-exports).

    Raises InputError naming the graph when the named file is missing or its hash differs.
    """
    entry = ensemble.card.get("onnx")
    if not isinstance(entry, dict) or ensemble.path is None or entry.get("precision", "fp32") != precision:
        return None
    if entry.get("opset") != OPSET or entry.get("export_version") != EXPORT_VERSION:
        log.warning("the ONNX graph named in %s is from an older export (opset %s, version %s); not using it. "
                    "Regenerate it: %s", card_path_for(ensemble.path), entry.get("opset"), entry.get("export_version"),
                    REGENERATE)
        return None
    path = Path(str(entry.get("file", "")))
    if not path.is_absolute():
        path = ensemble.path.parent / path
    if not path.is_file():
        raise InputError(f"ONNX graph named in the model card {card_path_for(ensemble.path).name} is missing",
                         source=str(path))
    if file_sha256(path) != entry.get("sha256"):
        raise InputError(f"ONNX graph does not match the model card {card_path_for(ensemble.path).name} "
                         f"(sha256 differs); regenerate it: {REGENERATE}", source=str(path))
    return path


def graph_metadata(path: Path | str) -> dict[str, str]:
    """The `ivuscal.*` metadata of a graph (weights hash, model id, precision), read with ONNX Runtime.

    InputError naming the file when ONNX Runtime cannot load it.
    """
    import onnxruntime as ort  # the runtime dependency; imported when used

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own (unexported) exception types
        raise InputError(f"not a loadable ONNX graph ({type(error).__name__})", source=str(path)) from error
    return dict(session.get_modelmeta().custom_metadata_map)


def record_in_card(weights_path: Path | str, graph: Path, sha256: str, precision: str, opset: int = OPSET,
                   command: str | None = None) -> Path:
    """Name `graph` in the weights' model card (`onnx: {file, sha256, opset, precision, export_version}`,
    and `command`, the export command that regenerates it, when given).

    `file` is relative to the card's folder when the graph lies beside it or below it. A card that
    does not exist yet is created with the weights' hash, so that loading still checks it.
    Returns the card's path.
    """
    weights_path = Path(weights_path)
    card_file = card_path_for(weights_path)
    card: dict[str, Any] = read_card(weights_path) or {
        "weights_file": weights_path.name,
        "weights_sha256": file_sha256(weights_path),
    }
    try:
        file = str(Path(graph).resolve().relative_to(card_file.parent.resolve()))
    except ValueError:
        file = str(Path(graph).resolve())
    card["onnx"] = {"file": file, "sha256": sha256, "opset": opset, "precision": precision,
                    "export_version": EXPORT_VERSION, **({"command": command} if command else {})}
    return write_card(weights_path, card)
