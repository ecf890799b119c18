"""The simulator's side of the calcium truth: its lesion records, on the shared file format.

The format (arcs per frame in displayed image coordinates, after cardiac rotation and NURD;
labels; borders) lives in engine/truth.py, which the engine reads without importing the
simulator. Here: `Lesion`, what the simulator records about each lesion it draws, and
`PullbackTruth`, the truth with those records typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.truth import CalciumTruth, read_truth, truth_paths, write_truth

__all__ = ["Lesion", "PullbackTruth", "load_truth", "truth_paths", "write_truth"]


@dataclass
class Lesion:
    """One calcium lesion as it appears in the frames."""

    index: int
    start_frame: int
    end_frame: int  # inclusive
    start_mm: float
    end_mm: float
    max_arc_deg: float
    depth: str  # 'superficial' | 'deep'
    nodule: bool
    reverberation: bool


@dataclass
class PullbackTruth(CalciumTruth):
    """A simulated pullback's truth, its lesions as `Lesion` records."""

    lesions: list[Lesion] = field(default_factory=list)


def load_truth(path: str | Path) -> PullbackTruth:
    """Read simulator truth (give the npz or the DICOM path)."""
    truth = read_truth(path)
    values = {f.name: getattr(truth, f.name) for f in fields(truth)}
    return PullbackTruth(**{**values, "lesions": [Lesion(**record) for record in truth.lesions]})
