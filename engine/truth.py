"""Calcium truth files: per-frame calcium arcs beside a pullback, and the per-A-line labels they give.

The engine reads them (`ivuscal analyze --truth`, the demo, training); the simulator writes them
(tools/simulator/truth.py adds its lesion records). Per frame, calcium is a list of arcs
`(start_deg, extent_deg)`: clockwise from `start_deg` in [0, 360) over `extent_deg` in (0, 360]
(docs/conventions.md). A-line k of A is calcified when its centre angle (k + 0.5) * 360 / A lies
inside an arc.

Files beside `NAME.dcm` (docs/simulator.md, docs/conventions.md):
- `NAME.truth.npz`: `arc_frame`, `arc_start_deg`, `arc_extent_deg` (the labels: noisy when label
  noise was asked for), `exact_arc_*` (always exact), `n_frames`, `labels_360` (bool, frames x
  360), `lumen_radius_mm` and `vessel_radius_mm` (float32, frames x 360, at A-line centres),
  `frame_time_s`, `pullback_rate_mm_s`, `label_noise`; `confounder_kinds` (str, K) and
  `confounder_bits` (uint16, frames x 360): bit k set where confounder kind k lies in that
  1-degree cell (and it is not calcium) - the per-cell labels false-positive rates are measured on.
- `NAME.lesions.json`: `lesions` (a list of records), `confounders`, `angle_convention`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import atomic
from engine.errors import InputError
from engine.json_output import write_json

Arc = tuple[float, float]  # (start_deg, extent_deg)


def angles_in_arcs(arcs: list[Arc], angles_deg: np.ndarray) -> np.ndarray:
    """Boolean mask: which angles lie inside any arc (start inclusive, end exclusive)."""
    angles = np.asarray(angles_deg, dtype=np.float64) % 360.0
    mask = np.zeros(angles.shape, dtype=bool)
    for start, extent in arcs:
        mask |= ((angles - start) % 360.0) < extent
    return mask


@dataclass
class CalciumTruth:
    """Per-frame calcium arcs, vessel borders and lesion records of one pullback."""

    arcs: list[list[Arc]]
    lumen_radius_mm: np.ndarray  # (frames, 360)
    vessel_radius_mm: np.ndarray  # (frames, 360)
    frame_time_s: float
    pullback_rate_mm_s: float
    lesions: list[Any] = field(default_factory=list)  # records (dicts, or the simulator's Lesion)
    exact_arcs: list[list[Arc]] | None = None  # set when `arcs` carry label noise
    confounders: list[dict] = field(default_factory=list)
    confounder_cells: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> bool (frames, 360)

    @property
    def n_frames(self) -> int:
        return len(self.arcs)

    @property
    def label_noise(self) -> bool:
        return self.exact_arcs is not None

    def labels(self, n_alines: int = 360, exact: bool = False) -> np.ndarray:
        """bool (frames, n_alines): A-line centre inside a calcium arc."""
        if n_alines < 1:
            raise InputError(f"n_alines must be positive, got {n_alines}")
        arcs = self.exact_arcs if (exact and self.exact_arcs is not None) else self.arcs
        centres = (np.arange(n_alines) + 0.5) * 360.0 / n_alines
        out = np.zeros((len(arcs), n_alines), dtype=bool)
        for i, frame_arcs in enumerate(arcs):
            if frame_arcs:
                out[i] = angles_in_arcs(frame_arcs, centres)
        return out

    def confounder_mask(self, kind: str, n_alines: int = 360) -> np.ndarray:
        """bool (frames, n_alines): A-lines whose centre falls in a 1-degree cell where `kind` lies."""
        cells = self.confounder_cells.get(kind)
        if cells is None:
            return np.zeros((self.n_frames, n_alines), dtype=bool)
        centres = ((np.arange(n_alines) + 0.5) * 360.0 / n_alines).astype(int) % 360
        return cells[:, centres]

    def frame_position_mm(self) -> np.ndarray:
        """Nominal position of each frame (docs/conventions.md)."""
        return np.arange(self.n_frames) * self.frame_time_s * self.pullback_rate_mm_s


def truth_paths(dicom_path: str | Path) -> tuple[Path, Path]:
    """(`NAME.truth.npz`, `NAME.lesions.json`) beside `NAME.dcm` (also given `NAME.truth.npz` itself)."""
    base = str(Path(dicom_path))
    for suffix in (".dcm", ".DCM", ".npz"):
        base = base.removesuffix(suffix)
    base = base.removesuffix(".truth")
    return Path(base + ".truth.npz"), Path(base + ".lesions.json")


def write_truth(path: str | Path, truth: CalciumTruth) -> Path:
    """Write the truth beside a DICOM path (or to a `.truth.npz` path), atomically; returns the npz path."""
    npz_path, json_path = truth_paths(path)
    data: dict[str, Any] = {f"arc_{k}": v for k, v in _flatten(truth.arcs).items()}
    if truth.exact_arcs is not None:
        data.update({f"exact_arc_{k}": v for k, v in _flatten(truth.exact_arcs).items()})
    # Typed Any like `data`: mypy matches a ** argument against every keyword, savez's bool allow_pickle too.
    cells: dict[str, Any] = _pack_cells(truth.confounder_cells, truth.n_frames)
    with atomic.atomic_path(npz_path) as partial:
        np.savez_compressed(
            partial,
            **data,
            n_frames=np.int64(truth.n_frames),
            labels_360=truth.labels(360),
            lumen_radius_mm=np.asarray(truth.lumen_radius_mm, dtype=np.float32),
            vessel_radius_mm=np.asarray(truth.vessel_radius_mm, dtype=np.float32),
            frame_time_s=np.float64(truth.frame_time_s),
            pullback_rate_mm_s=np.float64(truth.pullback_rate_mm_s),
            label_noise=np.bool_(truth.label_noise),
            **cells,
        )
    doc = {"lesions": [asdict(les) if is_dataclass(les) and not isinstance(les, type) else dict(les)
                       for les in truth.lesions],
           "confounders": truth.confounders,
           "angle_convention": "degrees clockwise as displayed from 3 o'clock (docs/conventions.md)"}
    write_json(json_path, doc, indent=1)
    return npz_path


def read_truth(path: str | Path) -> CalciumTruth:
    """Read truth written by `write_truth` (give the npz or the DICOM path); lesions as dicts.

    InputError naming the file when it is missing or incomplete.
    """
    npz_path, json_path = truth_paths(path)
    try:
        with np.load(npz_path) as z:
            n = int(z["n_frames"])
            arcs = _unflatten(n, z["arc_frame"], z["arc_start_deg"], z["arc_extent_deg"])
            exact = (_unflatten(n, z["exact_arc_frame"], z["exact_arc_start_deg"], z["exact_arc_extent_deg"])
                     if "exact_arc_frame" in z else None)
            truth = CalciumTruth(arcs, z["lumen_radius_mm"], z["vessel_radius_mm"], float(z["frame_time_s"]),
                                 float(z["pullback_rate_mm_s"]), exact_arcs=exact,
                                 confounder_cells=_unpack_cells(z))
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"cannot read calcium truth: {error}", source=str(npz_path)) from error
    if json_path.exists():
        try:
            doc = json.loads(json_path.read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read lesion records: {error}", source=str(json_path)) from error
        truth.lesions = list(doc.get("lesions", []))
        truth.confounders = doc.get("confounders", [])
    return truth


def _flatten(arcs: list[list[Arc]]) -> dict[str, np.ndarray]:
    frame = [i for i, a in enumerate(arcs) for _ in a]
    return {
        "frame": np.asarray(frame, dtype=np.int32),
        "start_deg": np.asarray([s for a in arcs for s, _ in a], dtype=np.float64),
        "extent_deg": np.asarray([e for a in arcs for _, e in a], dtype=np.float64),
    }


def _unflatten(n_frames: int, frame: np.ndarray, start: np.ndarray, extent: np.ndarray) -> list[list[Arc]]:
    arcs: list[list[Arc]] = [[] for _ in range(n_frames)]
    for i, s, e in zip(frame.tolist(), start.tolist(), extent.tolist(), strict=True):
        arcs[i].append((s, e))
    return arcs


def _pack_cells(cells: dict[str, np.ndarray], n_frames: int) -> dict[str, np.ndarray]:
    """Per-cell confounder masks as one uint16 bit field (frames, 360) and the kind of each bit."""
    if len(cells) > 16:
        raise ValueError(f"at most 16 confounder kinds fit the bit field, got {len(cells)}")
    kinds = sorted(cells)
    bits = np.zeros((n_frames, 360), dtype=np.uint16)
    for k, kind in enumerate(kinds):
        bits |= cells[kind].astype(np.uint16) << np.uint16(k)
    return {"confounder_kinds": np.asarray(kinds, dtype=str), "confounder_bits": bits}


def _unpack_cells(z: Any) -> dict[str, np.ndarray]:
    """Inverse of `_pack_cells`; empty for truth files written before the per-cell labels."""
    if "confounder_bits" not in z:
        return {}
    bits = z["confounder_bits"]
    return {str(kind): ((bits >> np.uint16(k)) & 1).astype(bool) for k, kind in enumerate(z["confounder_kinds"])}
