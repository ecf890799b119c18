"""Read and validate a pullback's DICOM header without reading its pixel data.

Every problem becomes an `InvalidPullbackError` that names the file and what is wrong. The
pixel data is checked against the header (bytes present for native data, frame fragments for
encapsulated data) by reading only the element headers, so that a truncated file is caught
before analysis starts rather than half-way through.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import get_expected_length

from engine.dicom.colour import SUPPORTED_PHOTOMETRICS
from engine.errors import InvalidPullbackError

ULTRASOUND_MODALITIES = ("IVUS", "US")
PIXEL_DATA_TAG = 0x7FE00010
DEFER_SIZE = 16 * 1024  # elements larger than this (pixel data) stay on disk until used
UNDEFINED_LENGTH = 0xFFFFFFFF

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Header:
    """A validated header: the dataset (pixel data deferred) and the image geometry."""

    dataset: Dataset
    n_frames: int
    rows: int
    cols: int
    photometric: str


def describe_error(error: BaseException) -> str:
    """`Type: message` on one line (library messages may span several)."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _fail(path: Path, message: str) -> InvalidPullbackError:
    return InvalidPullbackError(message, source=str(path))


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
        raise _fail(path, "file not found")
    if not path.is_file():
        raise _fail(path, "not a regular file")
    if path.stat().st_size == 0:
        raise _fail(path, "empty file (0 bytes)")
    with _pydicom_warnings() as caught:
        try:
            ds = pydicom.dcmread(path, defer_size=DEFER_SIZE)
        except InvalidDicomError:
            raise _fail(path, "not a DICOM file (no DICM preamble and file meta information)") from None
        except (EOFError, struct.error, ValueError, OSError, KeyError, IndexError) as error:
            raise _fail(path, f"truncated or corrupt DICOM header ({describe_error(error)})") from None
    if any("End of file reached" in str(w.message) for w in caught):
        raise _fail(path, "truncated file: it ends inside the pixel data")
    if len(ds) == 0:
        raise _fail(path, "truncated or corrupt file: no data elements could be read after the file meta information")
    for w in caught:
        log.debug("%s: pydicom: %s", path, w.message)
    return ds


def _positive_int(path: Path, ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _fail(path, f"missing or invalid {keyword} ({value!r})") from None
    if number < 1:
        what = "zero frames" if keyword == "NumberOfFrames" and number == 0 else f"{keyword} is {number}"
        raise _fail(path, what)
    return number


def _check_decodable(path: Path, ds: Dataset) -> None:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise _fail(path, "no transfer syntax in the file meta information")
    named = syntax.name if syntax.name == str(syntax) else f"{syntax.name} ({syntax})"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise _fail(path, f"transfer syntax {named} cannot be decoded by any installed plugin") from None
    if not decoder.is_available:
        raise _fail(path, f"transfer syntax {named} needs a decoder plugin that is not installed")


def _pixel_stream(path: Path, ds: Dataset) -> tuple[BinaryIO, int]:
    """A stream positioned at the pixel data value, and how many bytes of it the file holds."""
    element = ds.get_item(PIXEL_DATA_TAG, keep_deferred=True)
    if isinstance(element, RawDataElement) and element.value is None:  # deferred: still on disk
        stream = path.open("rb")
        stream.seek(element.value_tell)
        available = path.stat().st_size - element.value_tell
        if element.length != UNDEFINED_LENGTH:
            available = min(available, element.length)
        return stream, available
    data = bytes(ds.PixelData)  # small enough to have been read with the header
    return io.BytesIO(data), len(data)


def _check_pixel_extent(path: Path, ds: Dataset, n_frames: int) -> None:
    """Raise if the file holds fewer frames of pixel data than the header declares.

    Native data: compare the bytes present with the bytes the header implies. Encapsulated
    data: walk the item headers (seeking over the compressed frames) and count the fragments.
    """
    stream, available = _pixel_stream(path, ds)
    with stream:
        if not ds.file_meta.TransferSyntaxUID.is_encapsulated:
            expected = get_expected_length(ds)
            if available < expected:
                raise _fail(path, f"pixel data is shorter than declared: {available} bytes present, {n_frames} frames need {expected} (truncated file?)")
            return
        start = stream.tell()
        try:
            parse_basic_offsets(stream)
            n_fragments, offsets = parse_fragments(stream)
            if offsets:
                stream.seek(offsets[-1] + 4)
                (length,) = struct.unpack("<L", stream.read(4))
                if offsets[-1] + 8 + length > start + available:
                    raise _fail(path, f"pixel data is shorter than declared: the last of {n_fragments} compressed fragments is cut off")
        except (ValueError, struct.error) as error:
            raise _fail(path, f"corrupt encapsulated pixel data ({describe_error(error)})") from None
    if n_fragments < n_frames:
        raise _fail(path, f"pixel data is shorter than declared: {n_fragments} compressed fragments for {n_frames} frames")


def read_header(path: Path, *, require_pullback: bool = True) -> Header:
    """Open `path`, check that it is a decodable ultrasound image (a multi-frame one when
    `require_pullback`) whose pixel data is all there, and return its header."""
    ds = _read_dataset(path)
    if PIXEL_DATA_TAG not in ds:
        raise _fail(path, "no pixel data (not an image, or the file is truncated before it)")
    modality = str(ds.get("Modality", "")).strip()
    if modality not in ULTRASOUND_MODALITIES:
        raise _fail(path, f"modality {modality or 'missing'} is not ultrasound (expected IVUS or US)")
    rows = _positive_int(path, ds, "Rows")
    cols = _positive_int(path, ds, "Columns")
    n_frames = _positive_int(path, ds, "NumberOfFrames", default=1)
    if require_pullback and n_frames < 2:
        raise _fail(path, "a single-frame image, not a pullback (needs 2 or more frames)")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in SUPPORTED_PHOTOMETRICS:
        raise _fail(path, f"photometric interpretation {photometric or 'missing'} is not supported")
    if int(ds.get("BitsAllocated", 0)) not in (8, 16):
        raise _fail(path, f"{ds.get('BitsAllocated')} bits allocated per sample is not supported (8 or 16)")
    _check_decodable(path, ds)
    _check_pixel_extent(path, ds, n_frames)
    return Header(dataset=ds, n_frames=n_frames, rows=rows, cols=cols, photometric=photometric)
