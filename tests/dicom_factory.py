"""Small IVUS DICOM files for tests, written with pydicom (and Pillow for JPEG Baseline).

`write_pullback(path, frames, ...)` stores uint8 frames (n, rows, cols) or colour frames
(n, rows, cols, 3) as an Ultrasound Multi-frame Image, natively or JPEG Baseline encoded. It
sets a fake patient name and ID (`PATIENT_NAME`, `PATIENT_ID`) so that tests can check that
nothing prints them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
PATIENT_NAME = "Zzsecret^Patientname"
PATIENT_ID = "PID-7731-SECRET"


def ivus_frames(n: int, rows: int = 64, cols: int = 64, seed: int = 0) -> np.ndarray:
    """Distinct, recognisable uint8 frames: frame i has value (i * 7) % 200 + noise in its top row."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 50, (n, rows, cols), dtype=np.uint8)
    frames[:, 0, :] = ((np.arange(n) * 7) % 200 + 50).astype(np.uint8)[:, None]
    return frames


def us_region(delta_mm: float, x0: int | None = None, y0: int | None = None, units: int = 3) -> Dataset:
    """An ultrasound region with physical deltas (units 3 = cm, so `delta_mm` is divided by 10)."""
    region = Dataset()
    scale = 0.1 if units == 3 else 1.0
    region.PhysicalUnitsXDirection = units
    region.PhysicalUnitsYDirection = units
    region.PhysicalDeltaX = delta_mm * scale
    region.PhysicalDeltaY = delta_mm * scale
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    if x0 is not None:
        region.ReferencePixelX0 = x0
    if y0 is not None:
        region.ReferencePixelY0 = y0
    return region


def _jpeg_frames(frames: np.ndarray) -> list[bytes]:
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        options = {"subsampling": 1} if frame.ndim == 3 else {}  # 4:2:2, as YBR_FULL_422 says
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95, **options)
        encoded.append(buffer.getvalue())
    return encoded


def write_pullback(
    path: Path,
    frames: np.ndarray,
    *,
    modality: str = "IVUS",
    jpeg: bool = False,
    photometric: str | None = None,
    frame_time_ms: float | None = 33.3,
    pullback_rate_mm_s: float | None = 0.5,
    pixel_spacing_mm: float | None = 0.02,
    region: Dataset | None = None,
    manufacturer: str = "Test Vendor",
    model: str = "Test Console",
    number_of_frames: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `frames` as an IVUS multi-frame DICOM file at `path` and return `path`."""
    colour = frames.ndim == 4
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = US_MULTIFRAME
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.Modality = modality
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.NumberOfFrames = frames.shape[0] if number_of_frames is None else number_of_frames
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frame_time_ms is not None:
        ds.FrameTime = frame_time_ms
    if pullback_rate_mm_s is not None:
        ds.IVUSPullbackRate = pullback_rate_mm_s
    if pixel_spacing_mm is not None:
        ds.PixelSpacing = [pixel_spacing_mm, pixel_spacing_mm]
    if region is not None:
        ds.SequenceOfUltrasoundRegions = Sequence([region])
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    if jpeg:
        ds.PixelData = encapsulate(_jpeg_frames(frames))
        ds["PixelData"].VR = "OB"
        if colour:
            ds.PhotometricInterpretation = photometric or "YBR_FULL_422"
    else:
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
