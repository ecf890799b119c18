"""Colour and bit-depth handling: luma, annotation masking, MONOCHROME1, 16-bit samples."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from engine.dicom.colour import CHROMA_THRESHOLD, GrayConverter, rgb_to_gray_into


def _header(photometric: str, bits: int = 8) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    return ds


def test_gray_rgb_is_its_own_value() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    out = np.empty_like(gray)
    rgb_to_gray_into(np.repeat(gray[..., None], 3, axis=-1), out)
    np.testing.assert_array_equal(out, gray)


def test_mildly_tinted_echo_is_luma_not_masked() -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[...] = (120, 100, 110)  # chroma 20: a sepia display tint or JPEG noise
    out = np.empty((8, 8), np.uint8)
    rgb_to_gray_into(rgb, out)
    assert np.all(out == round(0.299 * 120 + 0.587 * 100 + 0.114 * 110))


def test_coloured_annotation_is_filled_from_its_neighbours() -> None:
    rng = np.random.default_rng(1)
    gray = rng.integers(60, 80, (40, 40), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    rgb[18:21, 5:35] = (0, 255, 0)  # a green 3-pixel line
    rgb[2, 2] = (255, 0, 255)  # a single magenta marker pixel
    out = np.empty((40, 40), np.uint8)
    rgb_to_gray_into(rgb, out)
    untouched = np.ones((40, 40), bool)
    untouched[18:21, 5:35] = untouched[2, 2] = False
    np.testing.assert_array_equal(out[untouched], gray[untouched])
    assert out[18:21, 5:35].min() >= 60 and out[18:21, 5:35].max() <= 80  # not the line's luma (150)
    assert 60 <= out[2, 2] <= 80


def test_a_solid_colour_block_larger_than_the_window_becomes_zero() -> None:
    rgb = np.zeros((30, 30, 3), np.uint8)
    rgb[...] = (200, 200, 200)
    rgb[5:25, 5:25] = (255, 0, 0)
    out = np.empty((30, 30), np.uint8)
    rgb_to_gray_into(rgb, out)
    assert np.all(out[10:20, 10:20] == 0) and np.all(out[0] == 200)
    assert CHROMA_THRESHOLD < 255


def test_monochrome1_inverts_and_sixteen_bit_scales_down() -> None:
    out = np.empty((1, 3), np.uint8)
    GrayConverter(_header("MONOCHROME1")).convert_into(np.array([[0, 100, 255]], np.uint8), out)
    assert out.tolist() == [[255, 155, 0]]
    GrayConverter(_header("MONOCHROME2", bits=12)).convert_into(np.array([[0, 2048, 4095]], np.uint16), out)
    assert out.tolist() == [[0, 128, 255]]
