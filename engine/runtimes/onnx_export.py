"""Export the fused ensemble (five members, normalisation, sigmoid, mean and spread) to one ONNX graph.

The graph has a dynamic batch dimension: input `polar` float32 (B, D, A) in [0, 1], outputs
`probability` and `spread` float32 (B, A). It is written with the torch.export-based exporter
(torch 2.13's legacy TorchScript exporter mistranslates the network's negative circular-padding
slices `x[..., -pad:]`), checked with `onnx.checker`, and compared with the float32 PyTorch
reference on a fixed random batch before it is kept (tolerance per precision: PARITY_TOLERANCE).

Cartesian-to-polar sampling stays outside the graph (engine.geometry.PolarSampler): its maps
depend on each pullback's image size, centre and pixel spacing, so a fused graph would have to
be re-exported or fed per-stream maps, while the sampler already runs on NumPy or CuPy.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxscript.optimizer
import torch

from engine.atomic import atomic_path
from engine.errors import InputError, InternalError
from engine.model.weights import LoadedEnsemble, ensemble_probabilities, file_sha256
from engine.runtimes.fused import LAYOUTS, FusedEnsemble
from engine.runtimes.graph import INPUT_NAME, OPSET, OUTPUT_NAMES

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}
# Largest |probability - reference| and |spread - reference| an export may show on the check
# batch: fp32 graphs reproduce the PyTorch ensemble to rounding (2e-6 seen); fp16 graphs (members
# in half precision) are compared with the same float32 reference, run by ONNX Runtime on the CPU.
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


@dataclass(frozen=True)
class OnnxExport:
    """An exported graph on disk."""

    path: Path
    sha256: str
    opset: int
    precision: str
    seconds: float
    max_abs_diff: float  # largest |probability or spread - float32 reference| on the check batch


def export_onnx(
    ensemble: LoadedEnsemble, out: Path | str, *, precision: str = "fp32", opset: int = OPSET, layout: str = "wide"
) -> OnnxExport:
    """Write the fused ensemble of `ensemble` to `out` (atomically) and return what was written.

    `layout`: "wide" (members as grouped convolutions, the default) or "members" (one after
    another, as trained); see engine/runtimes/fused.py.
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown ONNX precision {precision!r} (expected one of {sorted(PRECISIONS)})")
    if layout not in LAYOUTS:
        raise InputError(f"unknown ensemble layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    out = Path(out)
    started = time.perf_counter()
    model = _trace(ensemble, PRECISIONS[precision], opset, layout)
    _annotate(model, ensemble, precision, layout)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise InternalError(f"exported ONNX graph is invalid: {error}") from error
    with atomic_path(out) as partial:
        onnx.save(model, str(partial))
        max_diff = _check_parity(ensemble, partial, PARITY_TOLERANCE[precision])
    return OnnxExport(out, file_sha256(out), opset, precision, time.perf_counter() - started, max_diff)


def _trace(ensemble: LoadedEnsemble, dtype: torch.dtype, opset: int, layout: str) -> onnx.ModelProto:
    fused = FusedEnsemble(ensemble.models, compute_dtype=dtype, layout=layout).eval()
    example = torch.rand(2, ensemble.spec.n_depth, ensemble.spec.n_alines, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                fused,
                (example,),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes={"polar": {0: batch}},
                opset_version=opset,
                dynamo=True,
                optimize=False,  # onnxscript's full rewriter costs a third of the export; see below
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    if program is None:
        raise InternalError("torch.onnx.export returned no program")
    # Constant folding and dead-node removal only (under a second): Conv+BatchNorm fusion and the
    # like are left to ONNX Runtime and TensorRT, which do them when they load the graph.
    onnxscript.optimizer.fold_constants(program.model)
    onnxscript.optimizer.remove_unused_nodes(program.model)
    return program.model_proto  # serialised from the folded program.model


def _annotate(model: onnx.ModelProto, ensemble: LoadedEnsemble, precision: str, layout: str) -> None:
    """Record which weights and input spec the graph was made from (ONNX metadata_props)."""
    model.producer_name = "ivuscal"
    model.doc_string = "ivuscal fused calcium ensemble: polar (B, D, A) -> probability, spread (B, A)"
    meta = {
        "ivuscal.model_id": ensemble.model_id,
        "ivuscal.weights_sha256": ensemble.sha256,
        "ivuscal.n_members": str(len(ensemble.models)),
        "ivuscal.input_spec": json.dumps(ensemble.spec.to_dict()),
        "ivuscal.precision": precision,
        "ivuscal.layout": layout,
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)


def _check_parity(ensemble: LoadedEnsemble, path: Path, tolerance: float) -> float:
    """Largest |probability - reference| of the graph at `path` on a fixed batch; raises over tolerance."""
    import onnxruntime as ort  # only needed at export time

    polar = torch.rand(3, ensemble.spec.n_depth, ensemble.spec.n_alines, generator=torch.Generator().manual_seed(1))
    ref_prob, ref_spread = ensemble_probabilities(ensemble.models, polar)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    prob, spread = session.run(list(OUTPUT_NAMES), {INPUT_NAME: polar.numpy()})
    diff = max(float(np.abs(prob - ref_prob.numpy()).max()), float(np.abs(spread - ref_spread.numpy()).max()))
    if not diff <= tolerance:
        raise InternalError(f"exported ONNX graph differs from the PyTorch ensemble by {diff:.2e} (> {tolerance})")
    return diff
