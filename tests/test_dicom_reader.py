"""Reading pullbacks: real vendor files shipped with pydicom, files written here, lazy chunks."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest

from engine.dicom import open_pullback
from tests.dicom_factory import ivus_frames, write_pullback

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_file(name: str) -> Path:
    """A file from pydicom's wheel (never a download)."""
    path = PYDICOM_FILES / name
    assert path.is_file(), f"{name} is not in the installed pydicom wheel"
    return path


def as_ultrasound(src: Path, dst: Path) -> Path:
    """Copy of a pydicom test file relabelled as US, its pixel data (and encoding) untouched."""
    ds = pydicom.dcmread(src)
    ds.Modality = "US"
    ds.save_as(dst)
    return dst


def test_native_frames_round_trip_exactly(tmp_path: Path) -> None:
    frames = ivus_frames(10, 48, 40)
    with open_pullback(write_pullback(tmp_path / "p.dcm", frames)) as pullback:
        info = pullback.info
        assert (info.n_frames, info.rows, info.cols) == (10, 48, 40)
        assert info.photometric == "MONOCHROME2" and info.modality == "IVUS"
        assert info.transfer_syntax_name == "Explicit VR Little Endian"
        np.testing.assert_array_equal(pullback.read_frames(0, 10), frames)
        np.testing.assert_array_equal(pullback.read_frames(7, 9), frames[7:9])


def test_implicit_vr_little_endian_reads_the_same_frames(tmp_path: Path) -> None:
    frames = ivus_frames(6)
    ds = pydicom.dcmread(write_pullback(tmp_path / "p.dcm", frames))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(tmp_path / "implicit.dcm", implicit_vr=True, little_endian=True)
    with open_pullback(tmp_path / "implicit.dcm") as pullback:
        assert pullback.info.transfer_syntax_name == "Implicit VR Little Endian"
        np.testing.assert_array_equal(pullback.read_frames(0, 6), frames)


def test_chunks_cover_the_range_in_order(tmp_path: Path) -> None:
    frames = ivus_frames(23)
    with open_pullback(write_pullback(tmp_path / "p.dcm", frames)) as pullback:
        chunks = list(pullback.iter_chunks(chunk_frames=5, start=2, stop=20))
    assert [start for start, _ in chunks] == [2, 7, 12, 17]
    assert [len(chunk) for _, chunk in chunks] == [5, 5, 5, 3]
    assert all(chunk.dtype == np.uint8 and chunk.flags.c_contiguous for _, chunk in chunks)
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), frames[2:20])


def test_chunks_are_independent_arrays(tmp_path: Path) -> None:
    frames = ivus_frames(8)
    with open_pullback(write_pullback(tmp_path / "p.dcm", frames)) as pullback:
        kept = [chunk for _, chunk in pullback.iter_chunks(chunk_frames=4)]
    np.testing.assert_array_equal(kept[0], frames[:4])  # not overwritten by the next chunk


def test_jpeg_baseline_pullback_decodes_close_to_the_original(tmp_path: Path) -> None:
    frames = ivus_frames(6, 64, 64)
    frames[:, 20:40, 20:40] = 180  # flat patches compress almost losslessly
    with open_pullback(write_pullback(tmp_path / "j.dcm", frames, jpeg=True)) as pullback:
        assert pullback.info.transfer_syntax_uid == pydicom.uid.JPEGBaseline8Bit
        decoded = pullback.read_frames(0, 6)
    assert np.abs(decoded[:, 24:36, 24:36].astype(int) - 180).max() <= 3
    assert np.abs(decoded[:, 0, 8:56].astype(int) - frames[:, 0, 8:56]).mean() < 6  # per-frame rows kept apart


def test_colour_jpeg_with_burnt_in_annotation_becomes_clean_gray(tmp_path: Path) -> None:
    gray = np.full((4, 64, 64), 90, np.uint8)
    colour = np.repeat(gray[..., None], 3, axis=-1)
    colour[:, 30:34, 10:50] = (250, 220, 0)  # a yellow measurement line across the image
    with open_pullback(write_pullback(tmp_path / "c.dcm", colour, jpeg=True)) as pullback:
        assert pullback.info.photometric == "YBR_FULL_422"
        frames = pullback.read_frames(0, 4)
    assert frames.shape == (4, 64, 64)
    assert np.abs(frames[:, 31, 12:48].astype(int) - 90).max() <= 12  # line replaced by its surroundings
    assert np.abs(frames[:, 50, :].astype(int) - 90).max() <= 3


def test_real_jpeg_ybr_ultrasound_cine(tmp_path: Path) -> None:
    """examples_ybr_color.dcm: a 30-frame JPEG Baseline YBR_FULL_422 ultrasound cine (SonoSite)."""
    path = pydicom_file("examples_ybr_color.dcm")
    reference = pydicom.dcmread(path).pixel_array  # RGB (30, 240, 320, 3), decoded all at once
    with open_pullback(path) as pullback:
        info = pullback.info
        assert (info.n_frames, info.rows, info.cols) == (30, 240, 320)
        assert info.manufacturer == "SonoSite, Inc." and info.photometric == "YBR_FULL_422"
        assert info.calibration.frame_time_s == pytest.approx(0.033333)
        mm = 10 * 0.05104970559477806  # region deltas are in cm
        assert info.calibration.pixel_spacing_mm == pytest.approx((mm, mm))
        chunks = list(pullback.iter_chunks(chunk_frames=8))
    assert [s for s, _ in chunks] == [0, 8, 16, 24]
    frames = np.concatenate([c for _, c in chunks])
    gray_pixels = (reference.max(-1).astype(int) - reference.min(-1)) < 8
    luma = reference.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(frames[gray_pixels].astype(int) - np.rint(luma[gray_pixels])).max() <= 1
    assert not np.array_equal(frames[0], frames[29])  # a cine, not one frame repeated


def test_real_palette_colour_single_frame() -> None:
    with open_pullback(pydicom_file("examples_palette.dcm"), require_pullback=False) as pullback:
        assert pullback.info.photometric == "PALETTE COLOR" and pullback.info.n_frames == 1
        frame = pullback.read_frames(0, 1)[0]
    ds = pydicom.dcmread(pydicom_file("examples_palette.dcm"))
    rgb8 = (pydicom.pixels.apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)  # 16-bit LUT
    gray = (rgb8.max(-1).astype(int) - rgb8.min(-1)) == 0
    assert gray.mean() > 0.3
    np.testing.assert_array_equal(frame[gray], rgb8[..., 0][gray])


def test_real_big_endian_rgb_single_frame() -> None:
    path = pydicom_file("ExplVR_BigEnd.dcm")
    with open_pullback(path, require_pullback=False) as pullback:
        assert pullback.info.transfer_syntax_name == "Explicit VR Big Endian"
        frame = pullback.read_frames(0, 1)[0]
    rgb = pydicom.dcmread(path).pixel_array
    gray = (rgb.max(-1).astype(int) - rgb.min(-1)) == 0
    np.testing.assert_array_equal(frame[gray], rgb[..., 0][gray])


def test_real_rle_multiframe_keeps_gray_and_masks_saturated_colour(tmp_path: Path) -> None:
    path = as_ultrasound(pydicom_file("SC_rgb_rle_2frame.dcm"), tmp_path / "rle.dcm")
    with open_pullback(path) as pullback:
        assert pullback.info.transfer_syntax_name == "RLE Lossless" and pullback.info.n_frames == 2
        frames = pullback.read_frames(0, 2)
    rgb = pydicom.dcmread(path).pixel_array
    chroma = rgb.max(-1).astype(int) - rgb.min(-1)
    interior_gray = (chroma == 0) & (np.roll(chroma, 3, axis=1) == 0) & (np.roll(chroma, -3, axis=1) == 0)
    interior_gray &= (np.roll(chroma, 3, axis=2) == 0) & (np.roll(chroma, -3, axis=2) == 0)
    assert interior_gray.any() and (chroma > 200).any()
    np.testing.assert_array_equal(frames[interior_gray], rgb[..., 0][interior_gray])
    assert frames[chroma > 200].max() < 255  # pure red/green/blue bars are not echo


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    frames = ivus_frames(3)
    path = write_pullback(tmp_path / "m1.dcm", frames, photometric="MONOCHROME1")
    with open_pullback(path) as pullback:
        np.testing.assert_array_equal(pullback.read_frames(0, 3), 255 - frames)


def test_lazy_reading_keeps_memory_to_a_few_chunks(tmp_path: Path) -> None:
    n, size, chunk = 400, 128, 16
    path = write_pullback(tmp_path / "long.dcm", ivus_frames(n, size, size))
    chunk_bytes = chunk * size * size
    assert path.stat().st_size > 20 * chunk_bytes  # the file holds 25 chunks of pixel data
    tracemalloc.start()
    with open_pullback(path) as pullback:
        total = 0
        for _, frames in pullback.iter_chunks(chunk_frames=chunk):
            total += len(frames)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == n
    assert peak < 4 * chunk_bytes, f"peak {peak} bytes for chunks of {chunk_bytes}"


def test_lazy_reading_of_jpeg_keeps_memory_to_a_few_chunks(tmp_path: Path) -> None:
    n, size, chunk = 300, 96, 10
    path = write_pullback(tmp_path / "long.dcm", ivus_frames(n, size, size), jpeg=True)
    chunk_bytes = chunk * size * size
    tracemalloc.start()
    with open_pullback(path) as pullback:
        starts = [start for start, _ in pullback.iter_chunks(chunk_frames=chunk)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert starts == list(range(0, n, chunk))
    assert peak < 4 * chunk_bytes + 256 * 1024, f"peak {peak} bytes for chunks of {chunk_bytes}"
    assert n * size * size > 8 * peak  # far below the decoded pullback


def test_closed_pullback_and_bad_ranges_refuse_to_read(tmp_path: Path) -> None:
    pullback = open_pullback(write_pullback(tmp_path / "p.dcm", ivus_frames(4)))
    with pytest.raises(ValueError, match="outside"):
        pullback.read_frames(2, 9)
    with pytest.raises(ValueError, match="chunk_frames"):
        next(pullback.iter_chunks(chunk_frames=0))
    pullback.close()
    with pytest.raises(ValueError, match="closed"):
        pullback.read_frames(0, 1)
