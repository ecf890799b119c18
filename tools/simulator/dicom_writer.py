"""Write a simulated pullback as an Ultrasound Multi-frame Image (Modality IVUS), streaming.

The header is written with pydicom; the Pixel Data element, always the last one, is then
appended chunk by chunk (native: one OB value; JPEG Baseline: encapsulated, one fragment per
frame, empty Basic Offset Table), so a long pullback never sits in memory as a whole.
Everything is derived from the seed and the patient number: UIDs, dates and the clearly fake
patient identity are the same on every run.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from engine.atomic import atomic_path
from engine.errors import InputError
from tools.simulator.pullback import PullbackStream, SimulatedPullback
from tools.simulator.truth import write_truth

US_MULTIFRAME_SOP_CLASS = UID("1.2.840.10008.5.1.4.1.1.3.1")
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
ITEM_TAG = b"\xfe\xff\x00\xe0"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
REGION_UNITS_CM = 3


@dataclass(frozen=True)
class SyntheticPatient:
    """A clearly fake identity; tests search outputs for these strings to prove none leak."""

    number: int
    cohort_seed: int

    @property
    def name(self) -> str:
        return f"SYNTHETIC^FAKEPATIENT{self.number:04d}"

    @property
    def patient_id(self) -> str:
        return f"FAKEID-{self.cohort_seed % 1_000_000:06d}-{self.number:04d}"


def _uid(*parts: object) -> UID:
    """A UID under pydicom's root, hashed from the parts: the same parts give the same UID."""
    return generate_uid(entropy_srcs=["ivuscal-synth", *map(str, parts)])


def _chunks(source: SimulatedPullback | PullbackStream, on_chunk: Callable[[int], None] | None,
            chunk_frames: int = 64) -> Iterator[np.ndarray]:
    stream: Iterator[tuple[int, np.ndarray]]
    if isinstance(source, SimulatedPullback):
        stream = ((s, source.frames[s:s + chunk_frames]) for s in range(0, len(source.frames), chunk_frames))
    else:
        stream = iter(source)
    for _, frames in stream:
        yield frames
        if on_chunk is not None:
            on_chunk(len(frames))


def build_header(source: SimulatedPullback | PullbackStream, patient: SyntheticPatient, series: int) -> Dataset:
    """The DICOM header (everything but Pixel Data) of one pullback."""
    cfg, cal, seed = source.config, source.calibration, source.seed
    style = cfg.style
    rgb = cfg.color == "rgb"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_SOP_CLASS
    sop_uid = _uid(patient.cohort_seed, patient.number, series, seed, "sop")
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = JPEGBaseline8Bit if cfg.jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    day = 1 + (patient.cohort_seed + patient.number) % 28
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(patient.cohort_seed, patient.number, "study")
    ds.SeriesInstanceUID = _uid(patient.cohort_seed, patient.number, series, "series")
    ds.FrameOfReferenceUID = _uid(patient.cohort_seed, patient.number, series, "for")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = f"202001{day:02d}"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = f"{8 + series:02d}0000"
    ds.StudyID = f"{patient.number:04d}"
    ds.AccessionNumber = ""
    ds.Modality = "IVUS"
    ds.Manufacturer = style.manufacturer
    ds.ManufacturerModelName = style.model_name
    ds.SoftwareVersions = "ivuscal-synth 1"
    ds.InstitutionName = "Synthetic cohort (no real patient)"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = f"Synthetic IVUS pullback {series}"
    ds.SeriesNumber = series
    ds.InstanceNumber = 1
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = "19000101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "HEART"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BurnedInAnnotation = "YES" if cfg.annotations else "NO"
    # image pixel module
    ds.SamplesPerPixel = 3 if rgb else 1
    if rgb:
        ds.PhotometricInterpretation = "YBR_FULL_422" if cfg.jpeg else "RGB"
        ds.PlanarConfiguration = 0
    else:
        ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = cfg.image_size
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = cfg.n_frames
    if cfg.jpeg:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    else:
        ds.LossyImageCompression = "00"
    # cine and IVUS modules
    ds.FrameTime = f"{1000.0 * cal.frame_time_s:.10g}"
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.CineRate = int(round(cfg.fps))
    ds.RecommendedDisplayFrameRate = int(round(cfg.fps))
    ds.IVUSAcquisition = "MOTOR_PULLBACK"
    ds.IVUSPullbackRate = f"{cal.pullback_rate_mm_s:.10g}"
    ds.IVUSPullbackStartFrameNumber = 1
    ds.IVUSPullbackStopFrameNumber = cfg.n_frames
    ds.TransducerType = "SECTOR_PHASED" if style.name.startswith("phased") else "SECTOR_MECH"
    ds.SequenceOfUltrasoundRegions = [_region(cal, style.frequency_mhz)]
    return ds


def _region(cal, frequency_mhz: float) -> Dataset:
    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D
    region.RegionDataType = 1  # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = cal.image_size - 1
    region.RegionLocationMaxY1 = cal.image_size - 1
    region.PhysicalUnitsXDirection = REGION_UNITS_CM
    region.PhysicalUnitsYDirection = REGION_UNITS_CM
    region.PhysicalDeltaX = cal.pixel_spacing_mm[1] / 10.0
    region.PhysicalDeltaY = cal.pixel_spacing_mm[0] / 10.0
    region.ReferencePixelX0 = int(cal.centre_rc[1])
    region.ReferencePixelY0 = int(cal.centre_rc[0])
    region.ReferencePixelPhysicalValueX = 0.0
    region.ReferencePixelPhysicalValueY = 0.0
    region.TransducerFrequency = int(round(frequency_mhz * 1000))
    return region


def _jpeg_frames(chunks: Iterable[np.ndarray], quality: int) -> Iterator[bytes]:
    for chunk in chunks:
        for frame in chunk:
            buffer = io.BytesIO()
            if frame.ndim == 3:  # YCbCr 4:2:2 as YBR_FULL_422 asks
                Image.fromarray(frame, "RGB").save(buffer, "JPEG", quality=quality, subsampling=1)
            else:
                Image.fromarray(frame, "L").save(buffer, "JPEG", quality=quality)
            yield buffer.getvalue()


def _append_native(fh, chunks: Iterable[np.ndarray], n_bytes: int) -> None:
    fh.write(PIXEL_DATA_TAG + b"OB\x00\x00" + struct.pack("<I", n_bytes + n_bytes % 2))
    written = 0
    for chunk in chunks:
        data = np.ascontiguousarray(chunk, dtype=np.uint8)
        fh.write(data.data)
        written += data.nbytes
    if written != n_bytes:
        raise InputError(f"pullback produced {written} pixel bytes, header announced {n_bytes}")
    if n_bytes % 2:
        fh.write(b"\x00")


def _append_encapsulated(fh, fragments: Iterable[bytes]) -> None:
    fh.write(PIXEL_DATA_TAG + b"OB\x00\x00\xff\xff\xff\xff")
    fh.write(ITEM_TAG + struct.pack("<I", 0))  # empty Basic Offset Table
    for fragment in fragments:
        if len(fragment) % 2:
            fragment += b"\x00"
        fh.write(ITEM_TAG + struct.pack("<I", len(fragment)))
        fh.write(fragment)
    fh.write(SEQUENCE_DELIMITER)


def write_pullback(path: str | Path, source: SimulatedPullback | PullbackStream, *,
                   patient: SyntheticPatient | None = None, series: int = 1, with_truth: bool = True,
                   on_chunk: Callable[[int], None] | None = None) -> Path:
    """Write `source` (in memory or a stream) as DICOM at `path`, with its truth beside it.

    `on_chunk(n)` is called after each chunk of n frames is written (progress).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError("output folder does not exist", source=str(path.parent))
    patient = patient or SyntheticPatient(0, source.seed)
    cfg = source.config
    ds = build_header(source, patient, series)
    if with_truth:  # first: a DICOM file that exists is complete, truth included
        write_truth(path, source.truth)
    with atomic_path(path) as partial, open(partial, "wb") as fh:
        pydicom.dcmwrite(fh, ds, enforce_file_format=True)
        chunks = _chunks(source, on_chunk)
        if cfg.jpeg:
            _append_encapsulated(fh, _jpeg_frames(chunks, cfg.jpeg_quality))
        else:
            channels = 3 if cfg.color == "rgb" else 1
            _append_native(fh, chunks, cfg.n_frames * cfg.image_size * cfg.image_size * channels)
    return path
