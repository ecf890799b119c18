"""Polar geometry: angle convention, sampling accuracy, round trip, preallocation, CuPy parity."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.geometry import PolarSampler, aline_centers_deg, polar_to_cartesian
from engine.model.spec import InputSpec
from engine.xp import cupy_or_none

SPEC = InputSpec(n_alines=360, n_depth=128, depth_spacing_mm=0.04)
SHAPE = (256, 256)
CENTER = (127.5, 127.5)
SPACING = (0.04, 0.04)  # 256 px * 0.04 mm: the image spans +-5.12 mm around the centre


def _marker_image(angle_deg: float, radius_mm: float, spacing=SPACING, center=CENTER) -> np.ndarray:
    """A black image with a small bright disc at (radius, angle) in the docs/conventions.md frame."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    theta = np.deg2rad(angle_deg)
    r0 = center[0] + radius_mm * np.sin(theta) / spacing[0]
    c0 = center[1] + radius_mm * np.cos(theta) / spacing[1]
    image = np.zeros(SHAPE, np.uint8)
    image[np.hypot(rows - r0, cols - c0) <= 2.0] = 255
    return image


def test_aline_centers_are_bin_centres() -> None:
    assert aline_centers_deg(4).tolist() == [45.0, 135.0, 225.0, 315.0]
    centres = aline_centers_deg(360)
    assert centres[0] == 0.5 and centres[-1] == 359.5


def test_ninety_degrees_is_six_oclock_below_the_centre() -> None:
    image = _marker_image(90.0, 2.0)
    rows, cols = np.nonzero(image)
    assert rows.mean() > CENTER[0] + 40 and abs(cols.mean() - CENTER[1]) < 1  # below, not beside
    polar = PolarSampler(SHAPE, CENTER, SPACING, SPEC)(image)
    depth, aline = np.unravel_index(np.argmax(polar), polar.shape)
    assert aline in (89, 90)  # A-line 89 covers [89, 90) degrees, A-line 90 covers [90, 91)
    assert abs((depth + 0.5) * SPEC.depth_spacing_mm - 2.0) <= SPEC.depth_spacing_mm


@pytest.mark.parametrize("angle", [0.0, 45.0, 135.0, 180.0, 270.0, 330.0])
def test_marker_lands_on_its_aline(angle: float) -> None:
    polar = PolarSampler(SHAPE, CENTER, SPACING, SPEC)(_marker_image(angle, 3.0))
    profile = polar.max(axis=0)
    peak = aline_centers_deg(SPEC.n_alines)[np.argmax(profile)]
    assert abs((peak - angle + 180) % 360 - 180) <= 1.0


@settings(max_examples=30, deadline=None)
@given(
    angle=st.floats(0.0, 359.99),
    radius=st.floats(1.0, 4.5),
    center=st.tuples(st.floats(110.0, 146.0), st.floats(110.0, 146.0)),
)
def test_any_marker_lands_on_its_aline_and_depth(angle: float, radius: float, center: tuple[float, float]) -> None:
    """Wherever the catheter and the marker are, the polar image's mass sits at the marker."""
    polar = PolarSampler(SHAPE, center, SPACING, SPEC)(_marker_image(angle, radius, center=center))
    theta = np.deg2rad(aline_centers_deg(SPEC.n_alines))
    per_aline = polar.sum(axis=0)
    found = np.rad2deg(np.arctan2(per_aline @ np.sin(theta), per_aline @ np.cos(theta))) % 360
    depth_mm = (np.arange(SPEC.n_depth) + 0.5) * SPEC.depth_spacing_mm
    found_radius = (polar.sum(axis=1) @ depth_mm) / polar.sum()
    assert abs((found - angle + 180) % 360 - 180) <= 1.0
    assert abs(found_radius - radius) <= SPEC.depth_spacing_mm


def test_anisotropic_spacing_places_marker_in_millimetres() -> None:
    spacing = (0.03, 0.05)  # rows closer together than columns
    polar = PolarSampler(SHAPE, CENTER, spacing, SPEC)(_marker_image(0.0, 4.0, spacing=spacing))
    depth, aline = np.unravel_index(np.argmax(polar), polar.shape)
    assert aline in (0, 359)
    assert abs((depth + 0.5) * SPEC.depth_spacing_mm - 4.0) <= 2 * SPEC.depth_spacing_mm


def test_constant_image_is_its_value_inside_and_zero_outside() -> None:
    small = (100, 100)  # +-2 mm: the grid's outer samples (to 5.12 mm) leave the image
    sampler = PolarSampler(small, (49.5, 49.5), SPACING, SPEC)
    polar = sampler(np.full(small, 200, np.uint8))
    assert polar.dtype == np.float32 and polar.shape == (SPEC.n_depth, SPEC.n_alines)
    radius = (np.arange(SPEC.n_depth) + 0.5) * SPEC.depth_spacing_mm
    np.testing.assert_allclose(polar[radius < 1.9], 200 / 255, rtol=1e-6)
    assert np.all(polar[radius > 2.9] == 0.0)
    assert 0.0 < sampler.inside_fraction < 1.0


def test_round_trip_error_is_small_on_a_smooth_image() -> None:
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    image = (127 + 100 * np.sin(cols / 25.0) * np.cos(rows / 31.0)).astype(np.uint8)
    polar = PolarSampler(SHAPE, CENTER, SPACING, SPEC)(image)
    back = polar_to_cartesian(polar, SHAPE, CENTER, SPACING, SPEC) * 255
    radius = np.hypot(rows - CENTER[0], cols - CENTER[1]) * SPACING[0]
    region = radius < 5.0  # inside both the image and the polar grid
    error = np.abs(back - image)[region]
    assert error.mean() < 1.0
    assert error.max() < 6.0
    assert np.all(back[radius > SPEC.max_radius_mm + 0.05] == 0)


def test_polar_to_cartesian_places_an_aline_spike_below_the_centre() -> None:
    polar = np.zeros((SPEC.n_depth, SPEC.n_alines), np.float32)
    polar[:, 90] = 1.0  # A-line 90: [90, 91) degrees
    image = polar_to_cartesian(polar, SHAPE, CENTER, SPACING, SPEC)
    rows, cols = np.nonzero(image > 0.5)
    assert rows.min() > CENTER[0] and np.all(np.abs(cols - CENTER[1]) < 4)


def test_polar_to_cartesian_keeps_leading_axes_and_wraps_across_zero() -> None:
    polar = np.zeros((2, 3, SPEC.n_depth, SPEC.n_alines), np.float32)
    polar[..., 0] = polar[..., -1] = 1.0  # the arc across 0 degrees
    image = polar_to_cartesian(polar, SHAPE, (128.0, 128.0), SPACING, SPEC)
    assert image.shape == (2, 3, *SHAPE)
    assert image[1, 2, 128, 178] == pytest.approx(1.0)  # exactly 0 degrees, between A-lines 359 and 0
    assert image[1, 2, 128, 78] == 0.0  # 180 degrees


def test_sample_into_matches_call_and_allocates_nothing_after_warm_up() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, *SHAPE), dtype=np.uint8)
    sampler = PolarSampler(SHAPE, CENTER, SPACING, SPEC)
    expected = sampler(frames)
    out = np.empty((8, SPEC.n_depth, SPEC.n_alines), np.float32)
    sampler.sample_into(frames, out)  # warm up: scratch buffers sized to the batch
    tracemalloc.start()
    sampler.sample_into(frames, out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(out, expected)
    assert peak < out.nbytes // 10
    np.testing.assert_allclose(sampler(frames[3]), expected[3])


def test_sampler_rejects_wrong_shapes() -> None:
    sampler = PolarSampler(SHAPE, CENTER, SPACING, SPEC)
    with pytest.raises(ValueError, match="expected frames"):
        sampler(np.zeros((2, 10, 10), np.uint8))
    with pytest.raises(ValueError, match="out must be"):
        sampler.sample_into(np.zeros((2, *SHAPE), np.uint8), np.zeros((2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="pixel_spacing_mm"):
        PolarSampler(SHAPE, CENTER, (0.0, 0.04), SPEC)


@pytest.mark.gpu
@pytest.mark.skipif(cupy_or_none() is None, reason="needs CuPy and a CUDA GPU")
def test_cupy_matches_numpy() -> None:
    cp = cupy_or_none()
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, *SHAPE), dtype=np.uint8)
    expected = PolarSampler(SHAPE, CENTER, SPACING, SPEC)(frames)
    gpu = PolarSampler(SHAPE, CENTER, SPACING, SPEC, xp=cp)
    out = cp.empty((4, SPEC.n_depth, SPEC.n_alines), dtype=cp.float32)
    gpu.sample_into(cp.asarray(frames), out)
    np.testing.assert_allclose(cp.asnumpy(out), expected, atol=1e-6)
    back = polar_to_cartesian(out, SHAPE, CENTER, SPACING, SPEC, xp=cp)
    np.testing.assert_allclose(cp.asnumpy(back), polar_to_cartesian(expected, SHAPE, CENTER, SPACING, SPEC), atol=1e-5)
