"""Read and validate a pullback's DICOM header without reading its pixel data.

Every problem becomes an `InvalidPullbackError` that names the file and what is wrong. The
pixel data is checked against the header (`engine.dicom.extent`) so that a truncated file is
caught before analysis starts rather than half-way through.
"""

from __future__ import annotations

import logging
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import DeflatedExplicitVRLittleEndian

from engine.dicom.colour import SUPPORTED_PHOTOMETRICS
from engine.dicom.extent import PIXEL_DATA_TAG, check_pixel_extent
from engine.dicom.problems import describe_error, fail

ULTRASOUND_MODALITIES = ("IVUS", "US")
DEFER_SIZE = 16 * 1024  # elements larger than this (pixel data) stay on disk until used

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Header:
    """A validated header: the dataset (pixel data deferred) and the image geometry."""

    dataset: Dataset
    n_frames: int
    rows: int
    cols: int
    photometric: str


@contextmanager
def _pydicom_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect pydicom's warnings (also silencing its logger) so that they become our errors."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.setLevel(level)


def _read_dataset(path: Path) -> Dataset:
    if not path.exists():
        raise fail(path, "file not found")
    if not path.is_file():
        raise fail(path, "not a regular file")
    if path.stat().st_size == 0:
        raise fail(path, "empty file (0 bytes)")
    with _pydicom_warnings() as caught:
        try:
            ds = pydicom.dcmread(path, defer_size=DEFER_SIZE)
        except InvalidDicomError:
            raise fail(path, "not a DICOM file (no DICM preamble and file meta information)") from None
        except (EOFError, struct.error, ValueError, OSError, KeyError, IndexError) as error:
            raise fail(path, f"truncated or corrupt DICOM header ({describe_error(error)})") from None
    if any("End of file reached" in str(w.message) for w in caught):
        raise fail(path, "truncated file: it ends inside the pixel data")
    if len(ds) == 0:
        raise fail(path, "truncated or corrupt file: no data elements could be read after the file meta information")
    for w in caught:
        log.debug("%s: pydicom: %s", path, w.message)
    return ds


def _positive_int(path: Path, ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise fail(path, f"missing or invalid {keyword} ({value!r})") from None
    if number < 1:
        what = "zero frames" if keyword == "NumberOfFrames" and number == 0 else f"{keyword} is {number}"
        raise fail(path, what)
    return number


def _check_decodable(path: Path, ds: Dataset) -> None:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise fail(path, "no transfer syntax in the file meta information")
    named = syntax.name if syntax.name == str(syntax) else f"{syntax.name} ({syntax})"
    if syntax == DeflatedExplicitVRLittleEndian:  # the whole dataset is one zlib stream: no frame can be read alone
        raise fail(path, f"transfer syntax {named} is not supported (frames cannot be read one by one)")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise fail(path, f"transfer syntax {named} cannot be decoded by any installed plugin") from None
    if not decoder.is_available:
        raise fail(path, f"transfer syntax {named} needs a decoder plugin that is not installed")


def read_header(path: Path, *, require_pullback: bool = True) -> Header:
    """Open `path`, check that it is a decodable ultrasound image (a multi-frame one when
    `require_pullback`) whose pixel data is all there, and return its header."""
    ds = _read_dataset(path)
    if PIXEL_DATA_TAG not in ds:
        raise fail(path, "no pixel data (not an image, or the file is truncated before it)")
    modality = str(ds.get("Modality", "")).strip()
    if modality not in ULTRASOUND_MODALITIES:
        raise fail(path, f"modality {modality or 'missing'} is not ultrasound (expected IVUS or US)")
    rows = _positive_int(path, ds, "Rows")
    cols = _positive_int(path, ds, "Columns")
    n_frames = _positive_int(path, ds, "NumberOfFrames", default=1)
    if require_pullback and n_frames < 2:
        raise fail(path, "a single-frame image, not a pullback (needs 2 or more frames)")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in SUPPORTED_PHOTOMETRICS:
        raise fail(path, f"photometric interpretation {photometric or 'missing'} is not supported")
    if int(ds.get("BitsAllocated", 0)) not in (8, 16):
        raise fail(path, f"{ds.get('BitsAllocated')} bits allocated per sample is not supported (8 or 16)")
    _check_decodable(path, ds)
    check_pixel_extent(path, ds, n_frames)
    return Header(dataset=ds, n_frames=n_frames, rows=rows, cols=cols, photometric=photometric)
