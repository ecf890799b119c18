"""DICOM pullback ingest: validated headers, calibration, lazy grayscale frames (docs/dicom.md)."""

from engine.dicom.calibration import Calibration, CalibrationOverrides
from engine.dicom.reader import Pullback, PullbackInfo, open_pullback

__all__ = ["Calibration", "CalibrationOverrides", "Pullback", "PullbackInfo", "open_pullback"]
