"""Where derived model files live: ONNX graphs and TensorRT engines, keyed by the weights' hash.

The folder is `$IVUSCAL_CACHE`, else `$XDG_CACHE_HOME/ivuscal`, else `~/.cache/ivuscal`. Runtimes
call `onnx_for(ensemble)` and get a graph without anyone exporting by hand: the one the model
card names (when its hash matches), else a cached export, else a fresh export into the cache.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.errors import InputError
from engine.model.weights import LoadedEnsemble, file_sha256
from engine.runtimes.onnx_export import OPSET, export_onnx, read_metadata

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when the exported graph changes for the same weights


def cache_dir() -> Path:
    """The cache folder (created on demand by its users)."""
    if os.environ.get("IVUSCAL_CACHE"):
        return Path(os.environ["IVUSCAL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ivuscal"


def cache_subdir(name: str) -> Path:
    """A writable subfolder of the cache; a clear InputError when it cannot be made."""
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the model cache ({error}); set IVUSCAL_CACHE to a writable folder",
                         source=str(folder)) from error
    return folder


def onnx_for(ensemble: LoadedEnsemble, precision: str = "fp32", layout: str = "wide") -> Path:
    """An ONNX graph of `ensemble` at `precision`, exporting it into the cache on first use.

    `layout="members"` (the members one after another; benchmarks only) is never the card's graph.
    """
    card_graph = _card_graph(ensemble, precision) if layout == "wide" else None
    if card_graph is not None:
        return card_graph
    key = ensemble.sha256 or "unhashed"
    suffix = "" if layout == "wide" else f"-{layout}"
    path = cache_subdir("onnx") / f"{key}-{precision}-opset{OPSET}-v{EXPORT_VERSION}{suffix}.onnx"
    if path.is_file() and _made_from(path, ensemble):
        return path
    log.info("exporting %s (%s, %s) to %s", ensemble.model_id, precision, layout, path)
    return export_onnx(ensemble, path, precision=precision, layout=layout).path


def _card_graph(ensemble: LoadedEnsemble, precision: str) -> Path | None:
    """The graph recorded in the model card, when it exists, matches its hash and these weights."""
    entry = ensemble.card.get("onnx")
    if not entry or ensemble.path is None or entry.get("precision", "fp32") != precision:
        return None
    if entry.get("opset") != OPSET:
        return None
    path = Path(entry["file"])
    if not path.is_absolute():
        path = ensemble.path.parent / path
    if not path.is_file() or file_sha256(path) != entry.get("sha256") or not _made_from(path, ensemble):
        log.warning("ignoring the ONNX graph named in the model card of %s (missing or changed)", ensemble.path)
        return None
    return path


def _made_from(path: Path, ensemble: LoadedEnsemble) -> bool:
    try:
        return read_metadata(path).get("ivuscal.weights_sha256") == ensemble.sha256
    except Exception:  # a truncated or foreign file is simply not a cache hit
        return False
