"""The source pullback as the DICOM outputs reference it: its header (no pixel data) and who writes them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from engine.errors import InputError

REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
# Type 2 patient and study attributes (present, may be empty) that the outputs copy from the source
TYPE2_IDENTITY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "StudyID", "AccessionNumber")


@dataclass(frozen=True)
class Equipment:
    """Who creates the SR and presentation state (General Equipment module)."""

    manufacturer: str = "ivuscal"
    model_name: str = "ivuscal calcium detector"
    device_serial_number: str = "0"

    @property
    def software_version(self) -> str:
        try:
            return version("ivuscal")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0+unknown"


def read_source_header(path: Path) -> Dataset:
    """The pullback's header without pixel data; raises InputError when it cannot be referenced.

    Patient and study identity come along: the outputs carry it (inside DICOM only). Missing Type 2
    identity attributes are added empty, as the standard allows.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError) as error:
        raise InputError(f"cannot read the DICOM header ({error})", source=str(path)) from None
    missing = [keyword for keyword in REQUIRED if not str(ds.get(keyword, "")).strip()]
    if missing:
        raise InputError(f"no {', '.join(missing)}: DICOM outputs could not reference the source", source=str(path))
    for keyword in TYPE2_IDENTITY:  # a source that left a Type 2 attribute out still gets valid outputs
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def is_colour(ds: Dataset) -> bool:
    """True for colour images (RGB, YBR, palette): they take a colour presentation state."""
    return int(ds.get("SamplesPerPixel", 1)) == 3 or ds.get("PhotometricInterpretation") == "PALETTE COLOR"
