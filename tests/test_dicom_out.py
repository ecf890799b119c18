"""DICOM outputs read back: SR groups and presentation-state arcs equal the report files; dciodvfy finds no error.

The analysis is real (filter + quantify on crafted probability rows: lesions, an arc across
0 degrees, two arcs on one frame, a full circle); the files are written by the same
`write_report` and `write_dicom_outputs` that `ivuscal analyze --dicom` calls.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes as pydicom_codes

from engine.dicom_out import codes
from engine.dicom_out.polyline import polyline_arc_deg
from engine.dicom_out.sr import PULLBACK_TRACKING_ID, arc_tracking_id, lesion_tracking_id
from engine.dicom_out.write import write_dicom_outputs
from engine.errors import InputError
from engine.pipeline import PipelineSettings
from engine.quantify import ClinicalFindings, frame_arcs
from engine.report import FrameGeometry, result_from_probabilities, write_report
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, ivus_frames, write_pullback
from tests.system_tools import require_program

N_FRAMES, N_ALINES = 60, 120
GEOMETRY = FrameGeometry(center_rc=(47.5, 47.5), radius_px=40.0)


def probabilities() -> np.ndarray:
    """Two lesions: frames 10-29 (two arcs from frame 20, one across 0 degrees), frames 40-49 a full circle."""
    prob = np.zeros((N_FRAMES, N_ALINES), dtype=np.float32)
    prob[10:30, 10:60] = 0.9
    prob[20:30, 100:] = 0.9
    prob[20:30, :4] = 0.9  # joins 100..119 across 0 degrees
    prob[40:50, :] = 0.9
    return prob


def analysed(tmp: Path, *, colour: bool = False, findings: ClinicalFindings | None = None,
             reliability: dict | None = None) -> Path:
    frames = ivus_frames(N_FRAMES, 96, 96)
    if colour:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    source = write_pullback(tmp / "pullback.dcm", frames)
    settings = PipelineSettings(window_frames=3, window_alines=5, findings=findings or ClinicalFindings())
    model = {"model_id": "tiny@0123", **({"reliability": reliability} if reliability else {})}
    spread = np.full(probabilities().shape, 0.2, dtype=np.float32) if reliability else None
    result = result_from_probabilities(probabilities(), spread, 0.5, settings, model=model)
    out = tmp / "report"
    write_report(out, result)
    write_dicom_outputs(out, source, result, GEOMETRY)
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysed(tmp_path_factory.mktemp("gray"))


@pytest.fixture(scope="module")
def sr(report: Path) -> hd.sr.Comprehensive3DSR:
    return hd.sr.srread(report / "calcium_sr.dcm")


def _group(sr: hd.sr.Comprehensive3DSR, tracking_id: str):
    found = [g for g in sr.content.get_image_measurement_groups() + sr.content.get_planar_roi_measurement_groups()
             if g.tracking_identifier == tracking_id]
    assert len(found) == 1, tracking_id
    return found[0]


def _value(group, code) -> float:
    (measurement,) = group.get_measurements(name=code)
    return float(measurement.value)


def _points(group) -> dict[str, int | str]:
    measured = {m.name.value: int(m.value) for m in group.get_measurements() if m.unit.value == codes.POINTS.value}
    not_assessed = {q.name.value: q.value.value for q in group.get_qualitative_evaluations()
                    if q.name.value.startswith("CS-")}
    assert set(not_assessed.values()) <= {codes.MEASUREMENT_NOT_ATTEMPTED.value}
    return {**measured, **dict.fromkeys(not_assessed, "not assessed")}


def _expected_points(score: dict) -> dict[str, int | str]:
    return {
        codes.SCORE_TOTAL.value: score["total_assessed"],
        codes.SCORE_ARC_OVER_LENGTH.value: score["arc_gt_threshold_over_length"],
        codes.SCORE_FULL_CIRCLE.value: score["arc_360"],
        codes.SCORE_CALCIFIED_NODULE.value: score["calcified_nodule"],
        codes.SCORE_SMALL_VESSEL.value: score["vessel_diameter_small"],
    }


def test_every_lesion_matches_summary_json(report: Path, sr: hd.sr.Comprehensive3DSR) -> None:
    summary = json.loads((report / "summary.json").read_text())
    assert len(summary["lesions"]) == 2
    for i, lesion in enumerate(summary["lesions"]):
        group = _group(sr, lesion_tracking_id(i))
        assert group.finding_type == codes.VASCULAR_CALCIFICATION
        assert [site.value for site in group.finding_sites] == [codes.CORONARY_ARTERY]
        assert _value(group, codes.CALCIUM_LENGTH) == pytest.approx(lesion["length_mm"])
        (arc,) = group.get_measurements(name=codes.ARC_OF_CALCIUM)
        assert float(arc.value) == pytest.approx(lesion["max_arc_deg"])
        assert arc.unit == codes.DEGREE and arc.derivation == codes.MAXIMUM
        assert _points(group) == _expected_points(lesion["score"])
    whole = _group(sr, PULLBACK_TRACKING_ID)
    assert _value(whole, codes.CALCIUM_LENGTH) == pytest.approx(summary["calcium_length_mm"])
    assert _value(whole, codes.ARC_OF_CALCIUM) == pytest.approx(summary["max_arc_deg"])
    assert _points(whole) == _expected_points(summary["score"])


def test_every_calcified_frame_arc_matches_calcium_map(report: Path, sr: hd.sr.Comprehensive3DSR) -> None:
    with np.load(report / "calcium_map.npz") as data:
        calcium = data["calcium"]
    source = pydicom.dcmread(report.parent / "pullback.dcm", stop_before_pixels=True)
    planar = sr.content.get_planar_roi_measurement_groups(referenced_sop_instance_uid=source.SOPInstanceUID)
    expected = {}
    for index in np.flatnonzero(calcium.any(axis=1)):
        for j, arc in enumerate(frame_arcs(calcium[index])):
            expected[arc_tracking_id(int(index), j)] = (int(index), arc)
    assert len(expected) > calcium.any(axis=1).sum()  # some frame holds two arcs
    assert sorted(g.tracking_identifier for g in planar) == sorted(expected)
    for group in planar:
        index, arc = expected[group.tracking_identifier]
        assert _value(group, codes.ARC_OF_CALCIUM) == pytest.approx(arc.extent_deg)
        roi = group.roi
        assert roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        (image,) = roi.ContentSequence
        assert int(image.ReferencedSOPSequence[0].ReferencedFrameNumber) == index + 1
        start, extent = polyline_arc_deg(roi.value, GEOMETRY.center_rc)
        assert start == pytest.approx(arc.start_deg, abs=0.01) and extent == pytest.approx(arc.extent_deg, abs=0.01)


def test_unassessed_score_points_become_measured_when_given(tmp_path: Path) -> None:
    report = analysed(tmp_path, findings=ClinicalFindings(calcified_nodule=True, vessel_diameter_mm=3.0))
    sr = hd.sr.srread(report / "calcium_sr.dcm")
    summary = json.loads((report / "summary.json").read_text())
    points = _points(_group(sr, lesion_tracking_id(1)))
    assert points == _expected_points(summary["lesions"][1]["score"])
    assert "not assessed" not in points.values() and points[codes.SCORE_CALCIFIED_NODULE.value] == 1


def test_outputs_reference_the_source_and_carry_its_identity(report: Path) -> None:
    source = pydicom.dcmread(report.parent / "pullback.dcm", stop_before_pixels=True)
    sr = pydicom.dcmread(report / "calcium_sr.dcm")
    pr = pydicom.dcmread(report / "calcium_arcs_pr.dcm")
    for ds in (sr, pr):
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert (str(ds.PatientName), ds.PatientID) == (PATIENT_NAME, PATIENT_ID)
        assert ds.SeriesInstanceUID != source.SeriesInstanceUID and ds.SOPInstanceUID != source.SOPInstanceUID
    assert sr.SeriesInstanceUID != pr.SeriesInstanceUID
    (evidence,) = sr.CurrentRequestedProcedureEvidenceSequence
    (referenced_series,) = evidence.ReferencedSeriesSequence
    assert referenced_series.SeriesInstanceUID == source.SeriesInstanceUID
    assert referenced_series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    (series,) = pr.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == source.SeriesInstanceUID
    assert series.ReferencedImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sr.ContentSequence  # and the algorithm is named: model id and ivuscal's version
    algorithm = _group(hd.sr.srread(report / "calcium_sr.dcm"), PULLBACK_TRACKING_ID)
    names = [item.TextValue for item in _walk(algorithm) if item.get("ValueType") == "TEXT"]
    assert "tiny@0123" in names


def _walk(items):
    for item in items:
        yield item
        yield from _walk(item.get("ContentSequence", []))


def test_presentation_state_draws_each_calcified_frames_arcs(report: Path) -> None:
    with np.load(report / "calcium_map.npz") as data:
        calcium = data["calcium"]
    pr = pydicom.dcmread(report / "calcium_arcs_pr.dcm")
    assert pr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.1"  # Grayscale Softcopy Presentation State
    drawn = {}
    for annotation in pr.GraphicAnnotationSequence:
        (image,) = annotation.ReferencedImageSequence
        frame = int(image.ReferencedFrameNumber) - 1
        assert annotation.GraphicLayer == "CALCIUM"
        drawn[frame] = [polyline_arc_deg(np.reshape(g.GraphicData, (-1, 2)), GEOMETRY.center_rc)
                        for g in annotation.GraphicObjectSequence]
    assert sorted(drawn) == np.flatnonzero(calcium.any(axis=1)).tolist()
    for frame, arcs in drawn.items():
        expected = [(a.start_deg, a.extent_deg) for a in frame_arcs(calcium[frame])]
        np.testing.assert_allclose(arcs, expected, atol=0.01)


def test_colour_source_gets_a_colour_presentation_state(tmp_path: Path) -> None:
    report = analysed(tmp_path, colour=True)
    pr = pydicom.dcmread(report / "calcium_arcs_pr.dcm")
    assert pr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.2"  # Color Softcopy Presentation State
    assert len(pr.ICCProfile) > 100


@pytest.mark.parametrize(("colour", "reliability"), [(False, None), (True, {"frame_threshold": 0.1})],
                         ids=["grayscale", "colour-with-reliability-flag"])
def test_dciodvfy_finds_no_error(tmp_path: Path, colour: bool, reliability: dict | None) -> None:
    dciodvfy = require_program("dciodvfy", "dicom3tools")
    report = analysed(tmp_path, colour=colour, reliability=reliability)
    for name in ("calcium_sr.dcm", "calcium_arcs_pr.dcm"):
        run = subprocess.run([dciodvfy, str(report / name)], capture_output=True, text=True, timeout=60)
        errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], name


def test_a_source_without_study_uid_is_refused_by_name(tmp_path: Path) -> None:
    source = write_pullback(tmp_path / "bare.dcm", ivus_frames(4), extra={"StudyInstanceUID": ""})
    result = result_from_probabilities(np.zeros((4, 8), np.float32), None, 0.5, PipelineSettings(3, 3))
    with pytest.raises(InputError, match=r"bare\.dcm: no StudyInstanceUID"):
        write_dicom_outputs(tmp_path / "out", source, result, GEOMETRY)


def test_pydicom_swaps_entire_pullback_and_stented_region() -> None:
    """PS3.16 Annex D: 122383 Entire Pullback, 122384 Stented Region; pydicom's keywords carry the other meaning."""
    assert pydicom_codes.DCM.EntirePullback.value == "122383"
    assert pydicom_codes.DCM.EntirePullback.meaning == "Stented Region"
    assert pydicom_codes.DCM.StentedRegion.meaning == "Entire Pullback"


def test_the_reliability_flag_goes_into_the_pullback_group(tmp_path: Path) -> None:
    report = analysed(tmp_path, reliability={"frame_threshold": 0.1, "pullback_share": 0.5})
    summary = json.loads((report / "summary.json").read_text())
    assert summary["reliability"]["pullback_flagged"] is True and summary["reliability_notice"]
    whole = _group(hd.sr.srread(report / "calcium_sr.dcm"), PULLBACK_TRACKING_ID)
    assert _value(whole, codes.UNRELIABLE_SHARE) == pytest.approx(100.0)
    (flag,) = [q for q in whole.get_qualitative_evaluations() if q.name == codes.UNRELIABLE_PULLBACK]
    assert flag.value == codes.YES


def test_without_a_calibration_the_sr_carries_no_reliability_items(sr: hd.sr.Comprehensive3DSR) -> None:
    whole = _group(sr, PULLBACK_TRACKING_ID)
    assert not whole.get_measurements(name=codes.UNRELIABLE_SHARE)


def test_codes_agree_with_pydicom_dictionary() -> None:
    for ours, theirs in [
        (codes.CALCIUM_LENGTH, pydicom_codes.DCM.CalciumLength),
        (codes.ARC_OF_CALCIUM, pydicom_codes.DCM.ArcOfCalcium),
        (codes.VASCULAR_CALCIFICATION, pydicom_codes.SCT.VascularCalcification),
        (codes.CORONARY_ARTERY, pydicom_codes.SCT.CoronaryArtery),
        (codes.INTRAVASCULAR_ULTRASOUND, pydicom_codes.SCT.IntravascularUltrasound),
        (codes.MAXIMUM, pydicom_codes.SCT.Maximum),
        (codes.MEASUREMENT_NOT_ATTEMPTED, pydicom_codes.DCM.MeasurementNotAttempted),
        (codes.YES, pydicom_codes.SCT.Yes),
        (codes.NO, pydicom_codes.SCT.No),
        (codes.PERCENT, pydicom_codes.UCUM.Percent),
    ]:
        assert (ours.value, ours.scheme_designator) == (theirs.value, theirs.scheme_designator)
        assert ours.meaning == theirs.meaning


def test_render_pr_draws_the_presentation_states_polylines(report: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from tools.render_pr import frame_polylines, main

    pr = pydicom.dcmread(report / "calcium_arcs_pr.dcm")
    drawn = frame_polylines(pr)
    annotated = [int(a.ReferencedImageSequence[0].ReferencedFrameNumber) for a in pr.GraphicAnnotationSequence]
    assert sorted(drawn) == annotated
    out = tmp_path / "arcs.png"
    frame = min(drawn)
    run = CliRunner().invoke(main, [str(report.parent / "pullback.dcm"), str(report / "calcium_arcs_pr.dcm"),
                                    "--frame", str(frame), "--out", str(out)])
    assert run.exit_code == 0, run.output
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    orange = (rgb[..., 0] > 200) & (np.abs(rgb[..., 1] - 140) < 40) & (rgb[..., 2] < 80)
    assert orange.sum() > 50  # the arc, in the layer's colour, on a gray frame
