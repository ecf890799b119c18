"""The cohort summary of a batch: one table row per pullback, distribution plots, pooled evaluation.

Identifiers are the file name and the DICOM UIDs only (never paths, names or other patient data).
Files (docs/batch.md): `cohort.csv` (and `cohort.parquet` when pyarrow is installed),
`failures.csv`, `cohort_distributions.png`, and `evaluation.json` when simulator truth lies
beside the inputs (the pooled metrics of `ivuscal evaluate`, computed by training.evaluate).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.dicom.header import read_header
from engine.truth import read_truth

COLUMNS = [
    "pullback", "file", "study_uid", "series_uid", "sop_uid", "n_frames", "length_mm", "n_lesions",
    "max_arc_deg", "calcium_length_mm", "calcified_frames", "calcium_score", "truth", "analysis_s", "backend",
    "model_id",
]
UID_KEYWORDS = {"study_uid": "StudyInstanceUID", "series_uid": "SeriesInstanceUID", "sop_uid": "SOPInstanceUID"}


def cohort_row(
    key: str, source: Path, summary: dict[str, Any], seconds: float, runtime: dict[str, Any]
) -> dict[str, Any]:
    """The table row of one analysed pullback from its summary.json contents (see COLUMNS)."""
    dataset = read_header(Path(source)).dataset
    return {
        "pullback": key,
        "file": Path(source).name,
        **{column: str(dataset.get(keyword, "") or "") for column, keyword in UID_KEYWORDS.items()},
        "n_frames": summary["n_frames"],
        "length_mm": round(summary["pullback_length_mm"], 3),
        "n_lesions": len(summary["lesions"]),
        "max_arc_deg": round(summary["max_arc_deg"], 2),
        "calcium_length_mm": round(summary["calcium_length_mm"], 3),
        "calcified_frames": summary["calcified_frames"],
        "calcium_score": summary["score"]["total_assessed"],
        "truth": "truth" in summary,
        "analysis_s": round(seconds, 3),
        "backend": runtime.get("backend", ""),
        "model_id": runtime.get("model_id", ""),
    }


def write_table(out_dir: Path, rows: Sequence[dict[str, Any]]) -> list[Path]:
    """cohort.csv, and cohort.parquet when pyarrow is importable; the paths written."""
    rows = sorted(rows, key=lambda r: r["pullback"])
    csv_path = Path(out_dir) / "cohort.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    written = [csv_path]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    table = pa.table(columns) if rows else pa.table({c: pa.array([], pa.string()) for c in COLUMNS})
    pq.write_table(table, Path(out_dir) / "cohort.parquet")
    return [*written, Path(out_dir) / "cohort.parquet"]


def write_failures(out_dir: Path, failures: Sequence[tuple[str, str]]) -> Path:
    """failures.csv: (input path as given, one-line reason) per input that was not analysed."""
    path = Path(out_dir) / "failures.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input", "reason"])
        writer.writerows(sorted(failures))
    return path


def plot_distributions(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Histograms of the cohort: maximum arc, calcium length, lesions, calcium score, analysis time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("max_arc_deg", "maximum calcium arc (deg)", np.linspace(0, 360, 13)),
        ("calcium_length_mm", "calcified length (mm)", 12),
        ("n_lesions", "lesions per pullback", None),
        ("calcium_score", "calcium score (arc points)", None),
        ("analysis_s", "analysis time per pullback (s)", 12),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), dpi=100)
    for ax, (column, label, bins) in zip(axes, panels, strict=True):
        values = np.array([float(r[column]) for r in rows])
        if bins is None:  # small integers: one bar per value
            counts = np.bincount(values.astype(int)) if len(values) else np.zeros(1, int)
            ax.bar(np.arange(len(counts)), counts, color="#ff8c00")
            ax.set_xticks(np.arange(len(counts)))
        else:
            ax.hist(values, bins=bins, color="#ff8c00", edgecolor="white")
        ax.set_xlabel(label)
        ax.set_ylabel("pullbacks")
    fig.suptitle(f"Cohort of {len(rows)} analysed pullbacks", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class _TruthLabels:
    """Exact simulator truth of the i-th evaluated pullback: the `labels(i)` that score_predictions reads."""

    def __init__(self, sources: Sequence[Path], n_alines: int) -> None:
        self._sources, self._n_alines = list(sources), n_alines

    def labels(self, index: int) -> np.ndarray:
        return read_truth(self._sources[index]).labels(self._n_alines, exact=True)


def evaluate(reports: Sequence[tuple[str, Path, Path]], window: tuple[int, int]) -> dict[str, Any]:
    """The report of `ivuscal evaluate` (training.evaluate) for (key, report folder, input) with truth.

    Scores each report's ensemble probability (calcium_map.npz) against the exact truth beside its
    input, before and after the filter, pooled over all frames; per pullback rows carry the key.
    """
    from training.evaluate import score_predictions

    def maps():
        for index, (_, folder, _) in enumerate(reports):
            with np.load(folder / "calcium_map.npz") as data:
                yield index, {"ensemble": data["probability"]}

    n_alines = 360
    if reports:
        with np.load(reports[0][1] / "calcium_map.npz") as data:
            n_alines = int(data["probability"].shape[1])
    truth = _TruthLabels([source for _, _, source in reports], n_alines)
    report = score_predictions(maps(), truth, window)
    for row in report["per_pullback"]:
        row["pullback"] = reports[row["pullback"]][0]
    return report


def write_evaluation(out_dir: Path, report: dict[str, Any]) -> Path:
    path = Path(out_dir) / "evaluation.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path
