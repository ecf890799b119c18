"""The analysis as a TID 1500 Measurement Report (Comprehensive 3D SR, built with highdicom).

Content tree (docs/dicom.md, "Structured report"):
- one TID 1501 group for the entire pullback and one per lesion: Calcium Length (mm), Arc of
  Calcium (deg, derivation Maximum) and the IVUS calcium score's points; a point that was not
  assessed is a qualitative evaluation "Measurement not attempted";
- one TID 1410 planar ROI group per arc of each calcified frame: Arc of Calcium (deg) and the arc
  as a SCOORD POLYLINE on that frame (`referenced_frame_numbers`, 1-based).
An ultrasound multi-frame image has no frame of reference, so regions are 2-D image coordinates.
Frames without calcium get no group, so size grows with calcified frames only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from engine.dicom_out import codes
from engine.dicom_out.polyline import arc_polyline
from engine.dicom_out.source import Equipment
from engine.geometry import ring_radius_px
from engine.quantify import CalciumScore, frame_arcs
from engine.reliability import report_section
from engine.report.build import FrameGeometry
from engine.report.result import AnalysisResult

SERIES_NUMBER = 9701
PRIVATE_SCHEME = CodingSchemeIdentificationItem(
    designator=codes.PRIVATE_SCHEME,
    name=codes.PRIVATE_SCHEME_NAME,
    responsible_organization=codes.PRIVATE_SCHEME_ORGANIZATION,
)
PULLBACK_TRACKING_ID = "entire pullback"


def lesion_tracking_id(index: int) -> str:
    """Tracking identifier of lesion `index` (0-based, as in summary.json)."""
    return f"lesion {index}"


def arc_tracking_id(frame_index: int, arc_index: int) -> str:
    """Tracking identifier of arc `arc_index` of frame `frame_index` (both 0-based, as in calcium_map.npz)."""
    return f"frame {frame_index} arc {arc_index}"


def _score_items(score: CalciumScore) -> tuple[list[hd.sr.Measurement], list[hd.sr.QualitativeEvaluation]]:
    """The score's points: measured ones as NUM (points), unassessed ones as 'Measurement not attempted'."""
    points = {
        codes.SCORE_TOTAL: score.total,
        codes.SCORE_ARC_OVER_LENGTH: score.arc_over_length,
        codes.SCORE_FULL_CIRCLE: score.full_circle,
        codes.SCORE_CALCIFIED_NODULE: score.calcified_nodule,
        codes.SCORE_SMALL_VESSEL: score.small_vessel,
    }
    measured = [hd.sr.Measurement(name=name, value=value, unit=codes.POINTS)
                for name, value in points.items() if value is not None]
    not_assessed = [hd.sr.QualitativeEvaluation(name=name, value=codes.MEASUREMENT_NOT_ATTEMPTED)
                    for name, value in points.items() if value is None]
    return measured, not_assessed


def _reliability_items(
    section: dict[str, Any],
) -> tuple[list[hd.sr.Measurement], list[hd.sr.QualitativeEvaluation]]:
    """The reliability flag of summary.json (engine/reliability.py): share of flagged frames and the
    pullback's flag; nothing when the model carries no calibration."""
    if section.get("frame_threshold") is None:
        return [], []
    share = hd.sr.Measurement(name=codes.UNRELIABLE_SHARE, value=100.0 * section["flagged_share"], unit=codes.PERCENT)
    flag = codes.YES if section["pullback_flagged"] else codes.NO
    return [share], [hd.sr.QualitativeEvaluation(name=codes.UNRELIABLE_PULLBACK, value=flag)]


def _extent_group(
    tracking_id: str, length_mm: float, max_arc_deg: float, score: CalciumScore,
    frames: list[int], source: Dataset, common: dict,
    reliability: tuple[list[hd.sr.Measurement], list[hd.sr.QualitativeEvaluation]] = ([], []),
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """TID 1501 group over `frames` (1-based): length, maximum arc, score (and the reliability flag)."""
    measured, not_assessed = _score_items(score)
    measured, not_assessed = measured + reliability[0], not_assessed + reliability[1]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=tracking_id),
        measurements=[
            hd.sr.Measurement(name=codes.CALCIUM_LENGTH, value=length_mm, unit=codes.MILLIMETRE),
            hd.sr.Measurement(
                name=codes.ARC_OF_CALCIUM, value=max_arc_deg, unit=codes.DEGREE, derivation=codes.MAXIMUM
            ),
            *measured,
        ],
        qualitative_evaluations=not_assessed or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup(
            referenced_sop_class_uid=source.SOPClassUID,
            referenced_sop_instance_uid=source.SOPInstanceUID,
            referenced_frame_numbers=frames,
        )] if frames else None,
        **common,
    )


def _arc_groups(
    result: AnalysisResult, geometry: FrameGeometry, source: Dataset, common: dict
) -> Iterator[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """TID 1410 groups: one per arc of each calcified frame, the arc drawn as a polyline on that frame."""
    radius = ring_radius_px(geometry.center_rc, geometry.radius_px, (int(source.Rows), int(source.Columns)))
    for index in np.flatnonzero(result.calcium.any(axis=1)).tolist():
        for number, arc in enumerate(frame_arcs(result.calcium[index])):
            region = hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                graphic_data=arc_polyline(arc, geometry.center_rc, radius),
                source_image=hd.sr.SourceImageForRegion(
                    referenced_sop_class_uid=source.SOPClassUID,
                    referenced_sop_instance_uid=source.SOPInstanceUID,
                    referenced_frame_numbers=[index + 1],
                ),
            )
            yield hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(), identifier=arc_tracking_id(index, number)
                ),
                referenced_region=region,
                measurements=[hd.sr.Measurement(name=codes.ARC_OF_CALCIUM, value=arc.extent_deg, unit=codes.DEGREE)],
                **common,
            )


def algorithm_identification(result: AnalysisResult, equipment: Equipment) -> hd.sr.AlgorithmIdentification:
    """TID 4019: the model id as the algorithm name, ivuscal's version, the filter window as a parameter."""
    settings = result.settings
    return hd.sr.AlgorithmIdentification(
        name=str(result.model.get("model_id") or "ivuscal-ensemble"),
        version=equipment.software_version,
        parameters=[f"filter {settings.window_frames} frames x {settings.window_alines} A-lines"],
        manufacturer=equipment.manufacturer,
    )


def build_measurement_report(
    source: Dataset, result: AnalysisResult, geometry: FrameGeometry, equipment: Equipment | None = None
) -> hd.sr.Comprehensive3DSR:
    """The SR of one analysed pullback. `source` is its header (patient, study, UIDs come from it)."""
    equipment = equipment or Equipment()
    common = {
        "finding_type": codes.VASCULAR_CALCIFICATION,
        "finding_sites": [hd.sr.FindingSite(anatomic_location=codes.CORONARY_ARTERY)],
        "algorithm_id": algorithm_identification(result, equipment),
    }
    summary = result.summary
    calcified = (np.flatnonzero(result.calcium.any(axis=1)) + 1).tolist()
    reliability = _reliability_items(report_section(result.spread, result.model.get("reliability")))
    groups: list = [_extent_group(PULLBACK_TRACKING_ID, summary.calcium_length_mm, summary.max_arc_deg,
                                  summary.score, calcified, source, common, reliability)]
    for i, lesion in enumerate(summary.lesions):
        frames = list(range(lesion.start_frame + 1, lesion.end_frame + 2))
        groups.append(_extent_group(lesion_tracking_id(i), lesion.length_mm, lesion.max_arc_deg, lesion.score,
                                    frames, source, common))
    groups.extend(_arc_groups(result, geometry, source, common))
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept.from_code(codes.DEVICE_OBSERVER),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=equipment.model_name, manufacturer_name=equipment.manufacturer,
            model_name=str(result.model.get("model_id") or ""),
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.INTRAVASCULAR_ULTRASOUND,
        imaging_measurements=groups,
        title=codes.IMAGING_MEASUREMENT_REPORT,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=equipment.manufacturer,
        is_complete=True,
        series_description="ivuscal calcium measurements",
        coding_schemes=[PRIVATE_SCHEME],
    )
    return sr

