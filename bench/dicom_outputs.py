"""Scenario: building and writing the DICOM outputs (SR + presentation state) of a long pullback.

The SR holds one planar group per arc of each calcified frame and the presentation state one
annotation per calcified frame, so their cost grows with the calcified frames, not the pullback.
The calcium map is synthetic (blocks of 50 frames calcified with probability `fraction`, one arc
of 30-300 degrees per calcified frame plus a second of 20-60 degrees on every other one) and goes
through the report's own filter + quantify (a 1 x 1 window: the map is kept as is). The source is
an in-memory Ultrasound Multi-frame header (pixel data plays no part in the outputs).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from bench.result import ScenarioResult
from engine.dicom_out.pr import build_presentation_state
from engine.dicom_out.sr import build_measurement_report
from engine.dicom_out.write import save_atomically
from engine.pipeline import PipelineSettings
from engine.quantify import frame_arcs
from engine.report import FrameGeometry, result_from_probabilities
from engine.report.result import AnalysisResult

NAME = "dicom-out"
TITLE = "DICOM outputs: SR and presentation state of a long pullback"
FRACTIONS = (0.1, 0.3, 1.0)
BLOCK_FRAMES = 50


def source_header(frames: int, image_size: int) -> Dataset:
    """A grayscale Ultrasound Multi-frame header with the UIDs and identity the outputs copy."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "ReferringPhysicianName", "StudyID", "AccessionNumber"):
        setattr(ds, keyword, "")
    ds.Modality = "IVUS"
    ds.Rows = ds.Columns = image_size
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    return ds


def synthetic_result(frames: int, fraction: float, n_alines: int = 360, seed: int = 0) -> AnalysisResult:
    """An analysis whose calcium map is described in the module docstring (0.1 mm per frame)."""
    rng = np.random.default_rng(seed)
    calcium = np.zeros((frames, n_alines), dtype=np.float32)
    for start in range(0, frames, BLOCK_FRAMES):
        if rng.random() >= fraction:
            continue
        for i in range(start, min(start + BLOCK_FRAMES, frames)):
            first, extent = rng.integers(0, n_alines), rng.integers(30, 301) * n_alines // 360
            calcium[i, (first + np.arange(extent)) % n_alines] = 1.0
            if i % 2:
                second = (first + extent + 10 + np.arange(rng.integers(20, 61) * n_alines // 360)) % n_alines
                calcium[i, second] = 1.0
    return result_from_probabilities(calcium, None, 0.1, PipelineSettings(window_frames=1, window_alines=1),
                                     model={"model_id": "bench"})


def _timed(func, *args):
    """(value, wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = func(*args)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def run(frames: int = 3000, fractions: tuple[float, ...] = FRACTIONS, image_size: int = 512) -> ScenarioResult:
    """Build and write both outputs once per calcified fraction; seconds and sizes per row."""
    result = ScenarioResult(NAME, TITLE, {"frames": frames, "image_size": image_size, "fractions": list(fractions)})
    source = source_header(frames, image_size)
    geometry = FrameGeometry(((image_size - 1) / 2, (image_size - 1) / 2), image_size * 0.4)
    with tempfile.TemporaryDirectory() as folder:
        for fraction in fractions:
            analysis = synthetic_result(frames, fraction)
            calcified = int(analysis.calcium.any(axis=1).sum())
            sr, sr_s, sr_cpu_s = _timed(build_measurement_report, source, analysis, geometry)
            pr, pr_s, pr_cpu_s = _timed(build_presentation_state, source, analysis, geometry)
            sr_path, sr_write_s, sr_write_cpu_s = _timed(save_atomically, sr, Path(folder) / "sr.dcm")
            pr_path, pr_write_s, pr_write_cpu_s = _timed(save_atomically, pr, Path(folder) / "pr.dcm")
            result.rows.append({
                "calcified fraction": fraction,
                "calcified frames": calcified,
                "arcs": sum(len(frame_arcs(row)) for row in analysis.calcium),
                "lesions": len(analysis.summary.lesions),
                "SR build (s)": round(sr_s, 2),
                "SR build CPU (s)": round(sr_cpu_s, 2),
                "SR write (s)": round(sr_write_s, 2),
                "SR write CPU (s)": round(sr_write_cpu_s, 2),
                "SR size (MiB)": round(sr_path.stat().st_size / 2**20, 2),
                "PR build (s)": round(pr_s, 2),
                "PR build CPU (s)": round(pr_cpu_s, 2),
                "PR write (s)": round(pr_write_s, 2),
                "PR write CPU (s)": round(pr_write_cpu_s, 2),
                "PR size (MiB)": round(pr_path.stat().st_size / 2**20, 2),
            })
    worst = result.rows[-1]
    result.summary = {"sr_build_s": worst["SR build (s)"], "sr_build_cpu_s": worst["SR build CPU (s)"],
                      "sr_mib": worst["SR size (MiB)"], "pr_build_s": worst["PR build (s)"],
                      "pr_build_cpu_s": worst["PR build CPU (s)"], "pr_mib": worst["PR size (MiB)"]}
    return result
