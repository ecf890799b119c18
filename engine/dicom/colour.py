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
    """Luma (BT.601) of uint8 RGB (rows, cols, 3) into `out` (rows, cols), annotations masked."""
    r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    chroma = np.max(rgb, axis=-1).astype(np.int16) - np.min(rgb, axis=-1)
    overlay = chroma > CHROMA_THRESHOLD
    if overlay.any():
        keep = (~overlay).astype(np.float32)
        total = uniform_filter(luma * keep, size=FILL_WINDOW, mode="constant")
        count = uniform_filter(keep, size=FILL_WINDOW, mode="constant")
        filled = np.divide(total, count, out=np.zeros_like(total), where=count > 1e-6)
        luma = np.where(overlay, filled, luma)
    np.rint(luma, out=luma)
    out[...] = np.clip(luma, 0, 255)


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
