"""Decoded DICOM frames to uint8 grayscale, with coloured annotations masked out.

IVUS consoles burn coloured text, scale marks and markers into exported colour frames. The
echo image itself is gray (R = G = B, up to compression noise), so a pixel whose chroma
(max channel - min channel) exceeds `CHROMA_THRESHOLD` is treated as annotation: it is replaced
by the mean of the non-annotation pixels in the surrounding `FILL_WINDOW` x `FILL_WINDOW`
window (0 where the whole window is annotation). Gray (white) annotations cannot be told
from echo by colour and are kept.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut
from scipy.ndimage import uniform_filter

CHROMA_THRESHOLD = 64  # JPEG noise on gray echo stays below ~40; burnt-in colour is far above
FILL_WINDOW = 5
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")
GRAY_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
SUPPORTED_PHOTOMETRICS = GRAY_PHOTOMETRICS + COLOUR_PHOTOMETRICS


def _to_uint8(values: np.ndarray, bits: int) -> np.ndarray:
    """Scale integer samples of `bits` significant bits to 0..255."""
    if values.dtype == np.uint8 and bits <= 8:
        return values
    shift = max(bits - 8, 0)
    return (np.clip(values, 0, (1 << bits) - 1) >> shift).astype(np.uint8)


def rgb_to_gray_into(rgb: np.ndarray, out: np.ndarray) -> None:
    """Luma of uint8 RGB (rows, cols, 3) into `out` (rows, cols) uint8, annotations masked.

    Luma uses BT.601 weights in 8-bit fixed point (77, 150, 29) / 256, which sum to 1 so that
    gray pixels keep their exact value.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = r * np.uint16(77)
    luma += g * np.uint16(150)
    luma += b * np.uint16(29)
    luma += np.uint16(128)
    luma >>= 8
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    overlay = chroma > CHROMA_THRESHOLD
    out[...] = luma
    if overlay.any():
        _fill_overlay(out, overlay)


def _fill_overlay(gray: np.ndarray, overlay: np.ndarray) -> None:
    """Replace `overlay` pixels of `gray` in place by the mean of non-overlay pixels around them.

    Only the overlay's bounding box, widened by the window radius (so every window it needs lies
    inside), is filtered: burnt-in text usually covers a small part of the frame.
    """
    radius = FILL_WINDOW // 2
    rows = np.flatnonzero(overlay.any(axis=1))
    cols = np.flatnonzero(overlay.any(axis=0))
    box = (
        slice(max(rows[0] - radius, 0), rows[-1] + radius + 1),
        slice(max(cols[0] - radius, 0), cols[-1] + radius + 1),
    )
    mask = overlay[box]
    keep = (~mask).astype(np.float32)
    total = uniform_filter(gray[box] * keep, size=FILL_WINDOW, mode="constant")
    count = uniform_filter(keep, size=FILL_WINDOW, mode="constant")
    filled = np.divide(total, count, out=np.zeros_like(total), where=count > 1e-6)
    gray[box][mask] = np.clip(np.rint(filled[mask]), 0, 255)


class GrayConverter:
    """Turns one decoded frame (as pydicom yields it) into uint8 grayscale.

    `header` is the file's dataset, needed for palette lookup tables and bit depth.
    """

    def __init__(self, header: Dataset) -> None:
        self.photometric = str(header.PhotometricInterpretation).strip()
        self.bits = int(header.get("BitsStored", header.BitsAllocated))
        self._header = header

    def convert_into(self, frame: np.ndarray, out: np.ndarray) -> None:
        """Write the grayscale of `frame` into `out` (rows, cols) uint8."""
        if self.photometric in GRAY_PHOTOMETRICS:
            gray = _to_uint8(frame, self.bits)
            out[...] = 255 - gray if self.photometric == "MONOCHROME1" else gray
            return
        if self.photometric == "PALETTE COLOR":
            rgb = apply_color_lut(frame, self._header)
            bits = 16 if rgb.dtype.itemsize > 1 else 8
        else:  # RGB; pydicom has already turned YBR into RGB
            rgb, bits = frame, self.bits
        rgb_to_gray_into(_to_uint8(rgb, bits), out)
