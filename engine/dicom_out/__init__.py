"""DICOM outputs of an analysis: a TID 1500 structured report and an arc presentation state (docs/dicom.md)."""

from engine.dicom_out.pr import build_presentation_state
from engine.dicom_out.sr import build_measurement_report
from engine.dicom_out.write import DicomOutputs, write_dicom_outputs

__all__ = ["DicomOutputs", "build_measurement_report", "build_presentation_state", "write_dicom_outputs"]
