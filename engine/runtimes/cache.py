"""Which ONNX graph a runtime runs: the one shipped with the weights, else one exported into the cache.

`onnx_for(ensemble)` returns the graph the model card names (hash-checked, engine/runtimes/graph.py)
or a graph in `engine.cache_paths.cache_subdir("onnx")` keyed by the weights' hash, exporting it
there on first use. Only that export needs torch, onnx and onnxscript (the `export` extra).
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.cache_paths import cache_subdir
from engine.errors import BackendUnavailableError, InputError
from engine.model.weights import LoadedEnsemble
from engine.runtimes.graph import EXPORT_VERSION, OPSET, REGENERATE, card_graph, graph_metadata

log = logging.getLogger(__name__)


def onnx_for(ensemble: LoadedEnsemble, precision: str = "fp32", layout: str = "wide") -> Path:
    """An ONNX graph of `ensemble` at `precision`: shipped, cached, or exported into the cache now.

    `layout="members"` (the members one after another; benchmarks only) is never the card's graph.
    Raises InputError when the card names a graph that is missing or changed, and
    BackendUnavailableError when a graph must be exported but the export packages are absent.
    """
    shipped = card_graph(ensemble, precision) if layout == "wide" else None
    if shipped is not None:
        return shipped
    key = ensemble.sha256 or "unhashed"
    suffix = "" if layout == "wide" else f"-{layout}"
    path = cache_subdir("onnx") / f"{key}-{precision}-opset{OPSET}-v{EXPORT_VERSION}{suffix}.onnx"
    if path.is_file() and _made_from(path, ensemble):
        return path
    try:
        from engine.runtimes.onnx_export import export_onnx  # torch, onnx, onnxscript
    except ImportError as error:
        raise BackendUnavailableError(
            f"no current ONNX graph ships with {ensemble.path or 'this model'} and exporting one needs the "
            f"'export' extra ({error.name or error} is missing): pip install 'ivuscal[export]', then {REGENERATE}"
        ) from error
    log.info("exporting %s (%s, %s) to %s", ensemble.model_id, precision, layout, path)
    return export_onnx(ensemble, path, precision=precision, layout=layout).path


def _made_from(path: Path, ensemble: LoadedEnsemble) -> bool:
    """Whether a cached graph was exported from these weights (a truncated or foreign file is not)."""
    try:
        return graph_metadata(path).get("ivuscal.weights_sha256") == ensemble.sha256
    except InputError:
        return False
