"""Calcium quantification: arcs per frame, lesions along the pullback, the IVUS calcium score."""

from engine.quantify.arcs import Arc, frame_arcs, largest_arc_deg, max_arc_deg, max_arcs_deg, total_arc_deg
from engine.quantify.lesions import Lesion, LesionTracker, PullbackSummary, QuantifySettings, summarize_pullback
from engine.quantify.score import NOT_ASSESSED, CalciumScore, ClinicalFindings, ScoreSettings, arc_grade, calcium_score

__all__ = [
    "NOT_ASSESSED",
    "Arc",
    "CalciumScore",
    "ClinicalFindings",
    "Lesion",
    "LesionTracker",
    "PullbackSummary",
    "QuantifySettings",
    "ScoreSettings",
    "arc_grade",
    "calcium_score",
    "frame_arcs",
    "largest_arc_deg",
    "max_arc_deg",
    "max_arcs_deg",
    "summarize_pullback",
    "total_arc_deg",
]
