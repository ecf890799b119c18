"""Write an analysed pullback's DICOM outputs beside its report: sr.dcm and pr.dcm."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from engine.dicom_out.pr import build_presentation_state
from engine.dicom_out.source import read_source_header
from engine.dicom_out.sr import build_measurement_report
from engine.report.build import FrameGeometry
from engine.report.result import AnalysisResult

SR_NAME = "calcium_sr.dcm"
PR_NAME = "calcium_arcs_pr.dcm"


@dataclass(frozen=True)
class DicomOutputs:
    """Paths of the written SR and presentation state."""

    sr: Path
    pr: Path


def save_atomically(ds: Dataset, path: Path) -> Path:
    """Write a Part 10 file to a temporary name, fsync it, then rename it into place."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        ds.save_as(handle, enforce_file_format=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def write_dicom_outputs(
    out_dir: Path, source_path: Path, result: AnalysisResult, geometry: FrameGeometry
) -> DicomOutputs:
    """Build and write the SR and presentation state of `result` (the analysis of `source_path`).

    Raises InputError when the source header lacks the UIDs the outputs must reference.
    """
    source = read_source_header(source_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    sr = build_measurement_report(source, result, geometry)
    pr = build_presentation_state(source, result, geometry)
    return DicomOutputs(sr=save_atomically(sr, out_dir / SR_NAME), pr=save_atomically(pr, out_dir / PR_NAME))
