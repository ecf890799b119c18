"""Assemble the offline report: data files, plots and (with a truth map) agreement metrics.

`result_from_probabilities` is the seam for drivers that hold only the ensemble's per-frame
probability rows (a streaming journal, a filter-tuning grid): it re-runs the pipeline's
post-inference stages (filter + quantify) on them, the same code the live and offline drivers use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.metrics import aline_metrics
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.quantify import frame_arcs, summarize_pullback
from engine.report import files, plots
from engine.report.result import AnalysisResult, ResultCollector

ROWS_PER_STEP = 256


def result_from_probabilities(
    probability: np.ndarray,
    spread: np.ndarray | None,
    frame_spacing_mm: float,
    settings: PipelineSettings,
    **meta: Any,
) -> AnalysisResult:
    """Filter and quantify per-frame probability rows (frames 0..n-1, (n, A) float32)."""
    probability = np.asarray(probability, dtype=np.float32)
    if probability.ndim != 2 or probability.shape[0] == 0:
        raise InputError(f"probability rows must be a non-empty (frames, A-lines) array, got shape {probability.shape}")
    spread = np.zeros_like(probability) if spread is None else np.asarray(spread, dtype=np.float32)
    n, a = probability.shape
    pipeline = CalciumPipeline(None, settings)
    pipeline.begin_rows(frame_spacing_mm, a)
    collector = ResultCollector(a, n)
    for start in range(0, n, ROWS_PER_STEP):
        stop = min(start + ROWS_PER_STEP, n)
        collector.add(pipeline.process_probabilities(probability[start:stop], spread[start:stop], start))
    return collector.finish(pipeline.end(), frame_spacing_mm, settings, **meta)


def truth_comparison(result: AnalysisResult, truth: np.ndarray) -> dict[str, Any]:
    """A-line metrics before and after the filter, and the truth's own summary and score."""
    truth = np.asarray(truth, dtype=bool)
    truth_summary = summarize_pullback(
        truth, result.summary.frame_spacing_mm, result.settings.quantify, result.settings.findings
    )
    return {
        "before_filter": aline_metrics(result.probability > 0.5, truth),
        "after_filter": aline_metrics(result.calcium, truth),
        "truth_summary": {
            "max_arc_deg": truth_summary.max_arc_deg,
            "calcium_length_mm": truth_summary.calcium_length_mm,
            "n_lesions": len(truth_summary.lesions),
            "score": truth_summary.score.to_dict(),
        },
        "score_agrees": truth_summary.score.total == result.summary.score.total,
    }


class KeyFrameKeeper:
    """Keeps, for each of `n_slots` equal segments of the pullback, the frame with the largest arc.

    Only `n_slots` images are held; an image is copied only when it beats its segment's best.
    """

    def __init__(self, n_frames: int, n_slots: int = 4) -> None:
        self.n_frames = max(int(n_frames), 1)
        self.n_slots = max(1, min(n_slots, self.n_frames))
        self._best: dict[int, tuple[float, int, np.ndarray]] = {}

    def offer(self, index: int, arc_deg: float, image: np.ndarray) -> None:
        slot = min(index * self.n_slots // self.n_frames, self.n_slots - 1)
        if slot not in self._best or arc_deg > self._best[slot][0]:
            self._best[slot] = (arc_deg, index, np.array(image, copy=True))

    def frames(self) -> list[tuple[int, np.ndarray]]:
        """(index, image) of the kept frames, in pullback order."""
        return [(index, image) for _, index, image in sorted(self._best.values(), key=lambda v: v[1])]


@dataclass(frozen=True)
class FrameGeometry:
    """Where the catheter is in the Cartesian images and how far the polar grid reaches (pixels)."""

    center_rc: tuple[float, float]
    radius_px: float


def write_report(
    out_dir: Path,
    result: AnalysisResult,
    truth: np.ndarray | None = None,
    key_frames: list[tuple[int, np.ndarray]] | None = None,
    geometry: FrameGeometry | None = None,
) -> dict[str, Any]:
    """Write calcium_map.npz, summary.json, frames.csv, lesions.csv and the PNG plots; return the summary.

    With `truth` (bool frames x A) also truth_labels.npz and a `truth` section in summary.json.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if truth is not None:
        truth = np.asarray(truth, dtype=bool)
        if truth.shape != result.calcium.shape:
            raise InputError(f"truth map shape {truth.shape} does not match the analysis {result.calcium.shape}")
        extra["truth"] = truth_comparison(result, truth)
        files.write_truth_labels(out_dir / "truth_labels.npz", truth)
    files.write_calcium_map(out_dir / "calcium_map.npz", result)
    files.write_frames_csv(out_dir / "frames.csv", result)
    files.write_lesions_csv(out_dir / "lesions.csv", result)
    plots.plot_longitudinal_map(out_dir / "longitudinal_map.png", result, truth)
    plots.plot_arc_profile(out_dir / "arc_profile.png", result, truth)
    if key_frames and geometry is not None:
        shown = [
            plots.KeyFrame(
                index,
                float(result.frame_position_mm[index]),
                image,
                frame_arcs(result.calcium[index]),
                frame_arcs(truth[index]) if truth is not None else None,
            )
            for index, image in key_frames
        ]
        plots.plot_key_frames(out_dir / "key_frames.png", shown, geometry.center_rc, geometry.radius_px)
    return files.write_summary(out_dir / "summary.json", result, extra)
