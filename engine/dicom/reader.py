"""Open a DICOM IVUS pullback and read its frames lazily, in bounded chunks, as uint8 grayscale.

Frames are decoded by pydicom's frame iterator (`pydicom.pixels.iter_pixels`) on an open file:
native data is read frame by frame from its byte range, encapsulated (JPEG, RLE, ...) data
fragment by fragment, so memory holds one chunk of frames, never the whole pullback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.pixels import iter_pixels

from engine.dicom.calibration import Calibration, CalibrationOverrides, read_calibration
from engine.dicom.colour import GrayConverter
from engine.dicom.header import Header, read_header
from engine.dicom.problems import describe_error, fail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullbackInfo:
    """What a pullback is, without patient identifiers."""

    path: Path
    n_frames: int
    rows: int
    cols: int
    photometric: str
    transfer_syntax_uid: str
    transfer_syntax_name: str
    modality: str
    manufacturer: str
    model: str
    calibration: Calibration

    @property
    def frame_rate_hz(self) -> float:
        return 1.0 / self.calibration.frame_time_s

    @property
    def length_mm(self) -> float:
        """Distance pulled back while the frames were acquired: frames x frame time x speed."""
        return self.n_frames * self.calibration.frame_time_s * self.calibration.pullback_rate_mm_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no patient or study identifiers)."""
        cal = self.calibration
        return {
            "path": str(self.path),
            "n_frames": self.n_frames,
            "rows": self.rows,
            "cols": self.cols,
            "photometric": self.photometric,
            "transfer_syntax_uid": self.transfer_syntax_uid,
            "transfer_syntax_name": self.transfer_syntax_name,
            "modality": self.modality,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "frame_time_s": cal.frame_time_s,
            "frame_rate_hz": self.frame_rate_hz,
            "pullback_rate_mm_s": cal.pullback_rate_mm_s,
            "length_mm": self.length_mm,
            "pixel_spacing_mm": list(cal.pixel_spacing_mm),
            "center_rc": list(cal.center_rc),
            "defaulted": list(cal.defaulted),
            "sources": dict(cal.sources),
        }


def _info(path: Path, header: Header, calibration: Calibration) -> PullbackInfo:
    ds = header.dataset
    syntax = ds.file_meta.TransferSyntaxUID
    return PullbackInfo(
        path=path,
        n_frames=header.n_frames,
        rows=header.rows,
        cols=header.cols,
        photometric=header.photometric,
        transfer_syntax_uid=str(syntax),
        transfer_syntax_name=syntax.name,
        modality=str(ds.Modality).strip(),
        manufacturer=str(ds.get("Manufacturer", "") or "").strip(),
        model=str(ds.get("ManufacturerModelName", "") or "").strip(),
        calibration=calibration,
    )


class Pullback:
    """An opened pullback: `info`, and frames read on demand (`iter_chunks`, `read_frames`).

    Each read opens its own file handle, so reads may interleave; `close()` (or leaving the
    `with` block) ends further reading.
    """

    def __init__(self, info: PullbackInfo, header: Header) -> None:
        self.info = info
        self._converter = GrayConverter(header.dataset)
        self._closed = False

    def __enter__(self) -> Pullback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True

    def _range(self, start: int, stop: int | None) -> tuple[int, int]:
        if self._closed:
            raise ValueError(f"{self.info.path}: pullback is closed")
        n = self.info.n_frames
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise ValueError(f"frame range [{start}, {stop}) is outside the pullback's {n} frames")
        return start, stop

    def _decoded(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """`(index, decoded frame)` for frames [start, stop); decoding failures name the frame."""
        index = start
        try:
            with self.info.path.open("rb") as stream:
                for frame in iter_pixels(stream, indices=range(start, stop)):
                    yield index, frame
                    index += 1
        except (ValueError, RuntimeError, OSError, EOFError, KeyError, IndexError) as error:
            raise fail(self.info.path, f"cannot decode frame {index} ({describe_error(error)})") from error

    def iter_chunks(
        self, chunk_frames: int = 64, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(first_index, frames)` with frames uint8 (n <= chunk_frames, rows, cols), in order.

        Each chunk is a new array that the caller may keep.
        """
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
        start, stop = self._range(start, stop)
        chunk_start, chunk = start, None
        for index, frame in self._decoded(start, stop):  # one pass: no re-seeking per chunk
            if chunk is None:
                chunk_start = index
                chunk = np.empty((min(chunk_frames, stop - index), self.info.rows, self.info.cols), np.uint8)
            self._converter.convert_into(frame, chunk[index - chunk_start])
            if index - chunk_start + 1 == len(chunk):
                yield chunk_start, chunk
                chunk = None

    def read_frames(self, start: int, stop: int) -> np.ndarray:
        """Frames `[start, stop)` as one uint8 array (stop - start, rows, cols)."""
        start, stop = self._range(start, stop)
        out = np.empty((stop - start, self.info.rows, self.info.cols), np.uint8)
        for index, frame in self._decoded(start, stop):
            self._converter.convert_into(frame, out[index - start])
        return out


def open_pullback(
    path: str | Path, *, overrides: CalibrationOverrides | None = None, require_pullback: bool = True
) -> Pullback:
    """Open and validate a DICOM pullback; raises `InvalidPullbackError` naming the problem.

    With `require_pullback=False` a single-frame ultrasound image is accepted too (`inspect`).
    """
    path = Path(path)
    header = read_header(path, require_pullback=require_pullback)
    calibration = read_calibration(header.dataset, header.rows, header.cols, overrides)
    if calibration.defaulted:
        missing = ", ".join(calibration.defaulted)
        log.warning("%s: no %s in the file; using defaults (override on the command line)", path, missing)
    return Pullback(_info(path, header, calibration), header)
