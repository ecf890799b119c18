"""The report's data files (docs/conventions.md): calcium_map.npz, summary.json, frames.csv, lesions.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from engine import atomic
from engine.json_output import json_ready, write_json
from engine.quantify import frame_arcs, largest_arc_deg, total_arc_deg
from engine.reliability import report_section
from engine.report.result import AnalysisResult

FORMAT = "ivuscal-analysis/1"
FRAME_COLUMNS = ["frame", "position_mm", "n_arcs", "max_arc_deg", "total_arc_deg", "arcs_deg",
                 "mean_probability", "mean_spread", "lesion"]


def write_calcium_map(path: Path, result: AnalysisResult) -> None:
    """`calcium` bool, `probability` float32 (frames x A), `angles_deg`, `frame_position_mm`."""
    with atomic.atomic_path(path) as partial:
        np.savez_compressed(
            partial,
            calcium=result.calcium.astype(bool),
            probability=result.probability.astype(np.float32),
            angles_deg=result.angles_deg,
            frame_position_mm=result.frame_position_mm.astype(np.float64),
        )


def write_truth_labels(path: Path, truth: np.ndarray) -> None:
    """`truth_labels.npz`: `calcium` bool (frames x A), the truth the report was compared with."""
    with atomic.atomic_path(path) as partial:
        np.savez_compressed(partial, calcium=np.asarray(truth, dtype=bool))


def summary_dict(result: AnalysisResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """summary.json: the pullback summary, the settings and model that produced it, and `extra`."""
    reliability = report_section(result.spread, result.model.get("reliability"))
    data = {
        "format": FORMAT,
        "reliability_notice": reliability["notice"],
        **result.summary.to_dict(),
        "n_alines": result.n_alines,
        "settings": result.settings.to_dict(),
        "model": result.model,
        "source": result.source,
        "reliability": reliability,
    }
    data.update(extra or {})
    return json_ready(data)


def write_summary(path: Path, result: AnalysisResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write summary.json; return what was written."""
    return write_json(path, summary_dict(result, extra))


def write_frames_csv(path: Path, result: AnalysisResult) -> None:
    """One row per frame: position, arcs after the filter, mean probability and spread, lesion."""
    lesion_of = np.full(result.n_frames, -1)
    for i, lesion in enumerate(result.summary.lesions):
        lesion_of[lesion.start_frame : lesion.end_frame + 1] = i
    with atomic.atomic_path(path) as partial, open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FRAME_COLUMNS)
        for i in range(result.n_frames):
            arcs = frame_arcs(result.calcium[i])
            writer.writerow(
                [
                    i,
                    f"{result.frame_position_mm[i]:.4f}",
                    len(arcs),
                    f"{largest_arc_deg(arcs):.2f}",
                    f"{total_arc_deg(result.calcium[i]):.2f}",
                    ";".join(f"{a.start_deg:.1f}-{a.end_deg:.1f}" for a in arcs),
                    f"{float(result.probability[i].mean()):.4f}",
                    f"{float(result.spread[i].mean()):.4f}",
                    "" if lesion_of[i] < 0 else int(lesion_of[i]),
                ]
            )


def write_lesions_csv(path: Path, result: AnalysisResult) -> None:
    """One row per lesion with its extent, arcs, grade and score points."""
    rows = []
    for i, lesion in enumerate(result.summary.lesions):
        data = lesion.to_dict()
        score = data.pop("score")
        data = {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}
        rows.append({"lesion": i, **data, "score_total_assessed": score["total_assessed"],
                     "score_arc_points": score["arc_gt_threshold_over_length"], "score_360_point": score["arc_360"]})
    fields = list(rows[0]) if rows else ["lesion", "start_frame", "end_frame", "start_mm", "end_mm", "length_mm"]
    with atomic.atomic_path(path) as partial, open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
