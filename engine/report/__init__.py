"""Offline report of one pullback: data files (docs/conventions.md), CSV tables, plots, truth metrics."""

from engine.metrics import aline_metrics
from engine.report.build import FrameGeometry, KeyFrameKeeper, result_from_probabilities, truth_comparison, write_report
from engine.report.result import AnalysisResult, ResultCollector

__all__ = [
    "AnalysisResult",
    "FrameGeometry",
    "KeyFrameKeeper",
    "ResultCollector",
    "aline_metrics",
    "result_from_probabilities",
    "truth_comparison",
    "write_report",
]
