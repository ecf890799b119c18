"""Check that a file holds all the pixel data its header declares, without reading that data.

Native data: the bytes present are compared with the bytes the header implies. Encapsulated
data (JPEG, RLE, ...): the item headers are walked, seeking over the compressed frames, and the
fragments are counted.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.pixels.utils import get_expected_length

from engine.dicom.problems import describe_error, fail

PIXEL_DATA_TAG = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF


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


def check_pixel_extent(path: Path, ds: Dataset, n_frames: int) -> None:
    """Raise `InvalidPullbackError` if `path` holds fewer frames of pixel data than declared."""
    stream, available = _pixel_stream(path, ds)
    with stream:
        if not ds.file_meta.TransferSyntaxUID.is_encapsulated:
            expected = get_expected_length(ds)
            if available < expected:
                raise fail(
                    path,
                    f"pixel data is shorter than declared: {available} bytes present, "
                    f"{n_frames} frames need {expected} (truncated file?)",
                )
            return
        start = stream.tell()
        try:
            parse_basic_offsets(stream)
            n_fragments, offsets = parse_fragments(stream)
            if offsets:
                stream.seek(offsets[-1] + 4)
                (length,) = struct.unpack("<L", stream.read(4))
                if offsets[-1] + 8 + length > start + available:
                    raise fail(path, f"truncated file: the last of {n_fragments} compressed fragments is cut off")
        except (ValueError, struct.error) as error:
            raise fail(path, f"corrupt encapsulated pixel data ({describe_error(error)})") from None
    if n_fragments < n_frames:
        raise fail(path,
                   f"pixel data is shorter than declared: {n_fragments} compressed fragments for {n_frames} frames")
