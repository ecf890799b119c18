"""False calcium calls on the simulator's confounders, per cell, and the worst pullbacks.

The simulator's truth file labels, per frame and 1-degree cell, the confounders lying there
(guidewire shadow, stent strut, attenuated or dense fibrous plaque, side branch, plaque between
calcium plates, ...; `PullbackTruth.confounder_cells`, never on calcium). For each kind the
table gives the share of those non-calcium A-lines called calcium (the false-positive rate,
docs/conventions.md "Metrics"), pooled over the cohort and in the worst pullback, before and
after the filter. A kind the network confuses with calcium stands out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.filter import filter_map
from engine.truth import read_truth
from training.cache import PolarCache

STAGES = ("raw", "filtered")


def _rate(fp: int, negatives: int) -> float:
    return fp / negatives if negatives else float("nan")


def confounder_table(cache: PolarCache, cohort_dir: Path, maps: dict[int, np.ndarray], window: tuple[int, int]) -> dict:
    """{kind: {"frames", "cells", "fp_rate": {stage: rate}, "worst": {"pullback", "fp_rate"}}} over `maps`.

    `maps` holds the ensemble's probability map (frames, A) per cache pullback; the worst pullback
    is the one with the highest filtered false-positive rate for that kind (among those where the
    kind covers at least 100 cells).
    """
    totals: dict[str, dict] = {}
    n_alines = cache.spec.n_alines
    for index, prob in maps.items():
        source = cache.pullbacks[index].source
        truth = read_truth(cohort_dir / source)
        called = {"raw": prob > 0.5, "filtered": np.asarray(filter_map(np.asarray(prob, np.float32), *window))}
        calcium = truth.labels(n_alines, exact=True)
        for kind in truth.confounder_cells:
            cells = truth.confounder_mask(kind, n_alines) & ~calcium
            negatives = int(cells.sum())
            if not negatives:
                continue
            row = totals.setdefault(kind, {"frames": 0, "cells": 0, "fp": dict.fromkeys(STAGES, 0), "worst": None})
            row["frames"] += int(cells.any(axis=1).sum())
            row["cells"] += negatives
            fp = {stage: int((called[stage] & cells).sum()) for stage in STAGES}
            for stage in STAGES:
                row["fp"][stage] += fp[stage]
            rate = _rate(fp["filtered"], negatives)
            if negatives >= 100 and (row["worst"] is None or rate > row["worst"]["fp_rate"]):
                row["worst"] = {"pullback": source, "fp_rate": rate, "cells": negatives}
    return {
        kind: {
            "frames": row["frames"],
            "cells": row["cells"],
            "fp_rate": {stage: _rate(row["fp"][stage], row["cells"]) for stage in STAGES},
            "worst": row["worst"],
        }
        for kind, row in sorted(totals.items())
    }


def worst_pullbacks(report: dict, cache: PolarCache, cohort_dir: Path | None, name: str = "ensemble",
                    count: int = 5) -> list[dict]:
    """The `count` pullbacks with the lowest filtered specificity (then Dice), with their settings."""
    settings = _settings_by_file(cohort_dir) if cohort_dir is not None else {}
    rows = []
    for row in report["per_pullback"]:
        metrics = row[name]["filtered"]
        source = cache.pullbacks[row["pullback"]].source
        config = settings.get(source, {})
        rows.append({
            "pullback": source,
            "n_frames": row["n_frames"],
            **{key: metrics[key] for key in ("specificity", "dice", "sensitivity", "arc_error_deg")},
            "device": config.get("device"),
            "appearance": config.get("appearance"),
        })
    rows.sort(key=lambda r: (np.nan_to_num(r["specificity"], nan=2.0), np.nan_to_num(r["dice"], nan=2.0)))
    return rows[:count]


def _settings_by_file(cohort_dir: Path) -> dict[str, dict]:
    manifest = cohort_dir / "cohort.json"
    if not manifest.is_file():
        return {}
    doc = json.loads(manifest.read_text())
    return {run["dicom"]: run.get("settings", {}) for patient in doc["patients"] for run in patient["pullbacks"]}


def format_confounders(table: dict, worst: list[dict]) -> str:
    """Text lines: per-kind false-positive rates, then the worst pullbacks."""
    lines = [f"{'confounder':<12}{'frames':>8}{'cells':>10}{'FP raw':>9}{'FP filt':>9}  worst pullback (filtered)"]
    for kind, row in table.items():
        top = row["worst"]
        where = f"{top['pullback']} {100 * top['fp_rate']:.1f}%" if top else "-"
        lines.append(f"{kind:<12}{row['frames']:>8}{row['cells']:>10}{100 * row['fp_rate']['raw']:>8.1f}%"
                     f"{100 * row['fp_rate']['filtered']:>8.1f}%  {where}")
    lines.append(f"{'worst pullbacks':<20}{'frames':>7}{'spec':>8}{'dice':>8}{'sens':>8}{'arc err':>9}"
                 "  device/appearance")
    for row in worst:
        lines.append(f"{row['pullback']:<20}{row['n_frames']:>7}{row['specificity']:>8.4f}{row['dice']:>8.4f}"
                     f"{row['sensitivity']:>8.4f}{row['arc_error_deg']:>8.1f}°  {row['device']}/{row['appearance']}")
    return "\n".join(lines)
