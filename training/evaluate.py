"""Score probability maps against truth: each model, the ensemble, before and after the filter.

A report is a dict (JSON-ready):
    {"window": [frames, alines],
     "pooled": {name: {"raw": metrics, "filtered": metrics}},
     "per_pullback": [{"pullback": i, "n_frames": n, name: {"raw": ..., "filtered": ...}}, ...]}
where `metrics` are those of `engine.metrics.Confusion.metrics` and `name` is a member
("model0"...), "ensemble", or any label a caller gives (e.g. "out_of_fold").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from engine.filter import DEFAULT_WINDOW, filter_map
from engine.metrics import Confusion
from engine.model.network import CalciumNet
from training.cache import PolarCache
from training.data import frame_indices
from training.trainer import predict_rows

STAGES = ("raw", "filtered")


class LabelSource(Protocol):
    """What scoring reads of a cache: the truth of each pullback (PolarCache, or exact simulator truth)."""

    def labels(self, index: int) -> np.ndarray:
        """bool (n_frames, n_alines) truth of pullback `index`."""
        ...


def score_map(prob: np.ndarray, truth: np.ndarray, window: tuple[int, int]) -> dict[str, Confusion]:
    """Confusion of one pullback's (frames, A) probability map, at 0.5 and after the window filter."""
    filtered = np.asarray(filter_map(np.asarray(prob, np.float32), window[0], window[1]))
    return {"raw": Confusion.of(prob > 0.5, truth), "filtered": Confusion.of(filtered, truth)}


def score_predictions(
    predictions: Iterable[tuple[int, dict[str, np.ndarray]]],
    cache: LabelSource,
    window: tuple[int, int] = DEFAULT_WINDOW,
) -> dict:
    """Report for `(pullback, {name: prob (frames, A)})` items (see the module docstring)."""
    pooled: dict[str, dict[str, Confusion]] = {}
    per_pullback = []
    for index, probs in predictions:
        truth = cache.labels(index)
        row: dict = {"pullback": index, "n_frames": len(truth)}
        for name, prob in probs.items():
            scores = score_map(prob, truth, window)
            row[name] = {stage: scores[stage].metrics() for stage in STAGES}
            totals = pooled.setdefault(name, {stage: Confusion() for stage in STAGES})
            for stage in STAGES:
                totals[stage] += scores[stage]
        per_pullback.append(row)
    pooled_metrics = {name: {stage: c.metrics() for stage, c in stages.items()} for name, stages in pooled.items()}
    members = [name for name in pooled_metrics if name.startswith("model")]
    if members:
        pooled_metrics["mean_single"] = {
            stage: {k: float(np.mean([pooled_metrics[m][stage][k] for m in members]))
                    for k in pooled_metrics[members[0]][stage]}
            for stage in STAGES
        }
    return {"window": list(window), "pooled": pooled_metrics, "per_pullback": per_pullback}


def member_predictions(
    models: Sequence[CalciumNet], cache: PolarCache, pullbacks: Sequence[int] | None = None
) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
    """Per pullback: each member's probabilities ("model<i>") and their mean ("ensemble")."""
    for index in range(len(cache)) if pullbacks is None else pullbacks:
        rows = frame_indices(cache, [index])
        probs = {f"model{i}": predict_rows(model, cache, rows) for i, model in enumerate(models)}
        probs["ensemble"] = np.mean(np.stack(list(probs.values())), axis=0)
        yield index, probs


def out_of_fold_predictions(
    models: Sequence[CalciumNet], fold_of: Sequence[int], cache: PolarCache
) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
    """Per pullback: the probabilities of the one member that did not train on its patient."""
    for index, fold in enumerate(fold_of):
        yield index, {"out_of_fold": predict_rows(models[fold], cache, frame_indices(cache, [index]))}


def format_report(report: dict) -> str:
    """A small text table of the pooled metrics."""
    lines = [f"{'model':<14}{'stage':<10}{'accuracy':>9}{'dice':>8}{'sens':>8}{'spec':>8}{'arc err':>9}"]
    for name, stages in report["pooled"].items():
        for stage in STAGES:
            m = stages[stage]
            lines.append(
                f"{name:<14}{stage:<10}{m['accuracy']:>9.4f}{m['dice']:>8.4f}{m['sensitivity']:>8.4f}"
                f"{m['specificity']:>8.4f}{m['arc_error_deg']:>8.1f}°"
            )
    return "\n".join(lines)
