"""Polar geometry: Cartesian IVUS frames to the network's polar grid and back.

Conventions (docs/conventions.md): angle `theta` is measured at the catheter centre from +column
(3 o'clock) towards +row (6 o'clock), so 90 degrees lies straight below the centre. A point at
radius `r` mm and angle `theta` sits at `col = c0 + r cos(theta) / dx`,
`row = r0 + r sin(theta) / dy`. The polar grid is `engine.model.spec.InputSpec`: depth sample
`j` at radius `(j + 0.5) * depth_spacing_mm`, A-line `k` centred on `(k + 0.5) * 360 / A`.

Both directions are bilinear interpolations through maps computed once (four flat source
indices and four weights per output sample); applying a map to a batch allocates nothing when
the caller hands in the output and the batch size does not grow. One implementation runs on
NumPy or CuPy (`xp`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from engine.model.spec import InputSpec


def aline_centers_deg(n_alines: int) -> np.ndarray:
    """Centre angle in degrees of each of `n_alines` A-lines: `(k + 0.5) * 360 / n_alines`."""
    if n_alines < 1:
        raise ValueError(f"n_alines must be positive, got {n_alines}")
    return (np.arange(n_alines, dtype=np.float64) + 0.5) * (360.0 / n_alines)


def _corner_map(
    y: np.ndarray, x: np.ndarray, shape: tuple[int, int], wrap_x: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear corners of fractional positions (y, x) on a (rows, cols) grid of samples.

    Sample centres sit at integer positions. A position is inside when it lies within half a
    sample of the grid (or anywhere along x when `wrap_x`, which makes x periodic); outside
    positions get zero weights. Returns flat indices (4, n) intp and weights (4, n) float64.
    """
    rows, cols = shape
    y = y.ravel()
    x = x.ravel()
    inside = (y >= -0.5) & (y < rows - 0.5)
    if not wrap_x:
        inside &= (x >= -0.5) & (x < cols - 0.5)
    y0 = np.floor(y)
    x0 = np.floor(x)
    fy = y - y0
    fx = x - x0
    y0i = y0.astype(np.int64)
    x0i = x0.astype(np.int64)
    ys = (np.clip(y0i, 0, rows - 1), np.clip(y0i + 1, 0, rows - 1))
    if wrap_x:
        xs = (np.mod(x0i, cols), np.mod(x0i + 1, cols))
    else:
        xs = (np.clip(x0i, 0, cols - 1), np.clip(x0i + 1, 0, cols - 1))
    index = np.stack([ys[a] * cols + xs[b] for a in (0, 1) for b in (0, 1)]).astype(np.intp)
    weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    weight *= inside
    index *= inside  # outside samples read element 0 with weight 0
    return index, weight


class _BilinearMap:
    """Four flat source indices and weights per output sample, applied to batches on `xp`."""

    def __init__(self, index: np.ndarray, weight: np.ndarray, xp: ModuleType) -> None:
        self.xp = xp
        self.index = xp.asarray(index)
        self.weight = xp.asarray(weight.astype(np.float32)[:, None, :])  # (4, 1, n) broadcasts over batch
        self.n_out = index.shape[1]
        self._gather: Any = None
        self._term: Any = None
        # NumPy buffers `out` unless indices need no checking; CuPy's take has no `mode`.
        self._take_kwargs = {"mode": "clip"} if xp is np else {}

    def _scratch(self, batch: int, dtype: Any) -> tuple[Any, Any]:
        """Per-batch scratch buffers, reallocated only when the batch grows or the dtype changes."""
        if self._gather is None or self._gather.shape[0] < batch or self._gather.dtype != dtype:
            self._gather = self.xp.empty((batch, self.n_out), dtype=dtype)
            self._term = self.xp.empty((batch, self.n_out), dtype=np.float32)
        return self._gather[:batch], self._term[:batch]

    def apply_into(self, src_flat: Any, out_flat: Any) -> None:
        """`out_flat[b] = sum_c weight[c] * src_flat[b, index[c]]`; (B, N) -> (B, n_out) float32."""
        xp = self.xp
        gather, term = self._scratch(src_flat.shape[0], src_flat.dtype)
        for corner in range(4):
            xp.take(src_flat, self.index[corner], axis=1, out=gather, **self._take_kwargs)
            target = out_flat if corner == 0 else term
            xp.multiply(gather, self.weight[corner], out=target)
            if corner:
                xp.add(out_flat, term, out=out_flat)


def _polar_positions(
    center_rc: tuple[float, float], pixel_spacing_mm: tuple[float, float], spec: InputSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) image positions of every polar sample, shape (n_depth, n_alines)."""
    radius = (np.arange(spec.n_depth, dtype=np.float64) + 0.5) * spec.depth_spacing_mm
    theta = np.deg2rad(aline_centers_deg(spec.n_alines))
    dy, dx = pixel_spacing_mm
    row = center_rc[0] + radius[:, None] * np.sin(theta)[None, :] / dy
    col = center_rc[1] + radius[:, None] * np.cos(theta)[None, :] / dx
    return row, col


def _check_geometry(image_shape: tuple[int, int], pixel_spacing_mm: tuple[float, float]) -> None:
    if len(image_shape) != 2 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (rows, cols) with positive sizes, got {image_shape}")
    if len(pixel_spacing_mm) != 2 or min(pixel_spacing_mm) <= 0:
        raise ValueError(f"pixel_spacing_mm must be two positive numbers, got {pixel_spacing_mm}")


class PolarSampler:
    """Resamples Cartesian uint8 frames (B, H, W) onto the polar grid of `spec`, float32 in [0, 1].

    The sampling map is built once; `sample_into` writes a batch into a caller's buffer without
    allocating (scratch buffers are kept and grow only with the batch size). Samples that fall
    outside the image are 0.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        center_rc: tuple[float, float],
        pixel_spacing_mm: tuple[float, float],
        spec: InputSpec,
        xp: ModuleType = np,
    ) -> None:
        _check_geometry(image_shape, pixel_spacing_mm)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.spec = spec
        self.xp = xp
        row, col = _polar_positions(center_rc, pixel_spacing_mm, spec)
        index, weight = _corner_map(row, col, self.image_shape, wrap_x=False)
        self._map = _BilinearMap(index, weight / 255.0, xp)
        self.inside_fraction = float(np.mean(weight.sum(axis=0) > 0))

    @property
    def output_shape(self) -> tuple[int, int]:
        """(n_depth, n_alines) of one polar frame."""
        return (self.spec.n_depth, self.spec.n_alines)

    def _flat_frames(self, frames: Any) -> Any:
        if frames.ndim != 3 or tuple(frames.shape[1:]) != self.image_shape:
            raise ValueError(f"expected frames (B, {self.image_shape[0]}, {self.image_shape[1]}), got {frames.shape}")
        return frames.reshape(frames.shape[0], -1)

    def sample_into(self, frames: Any, out: Any) -> Any:
        """Sample frames (B, H, W) into `out` (B, n_depth, n_alines) float32 on `xp`; returns `out`."""
        flat = self._flat_frames(frames)
        if tuple(out.shape) != (flat.shape[0], *self.output_shape) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {(flat.shape[0], *self.output_shape)}, got {out.dtype} {out.shape}")
        self._map.apply_into(flat, out.reshape(flat.shape[0], -1))
        return out

    def __call__(self, frames: Any) -> Any:
        """Polar float32 frames: (B, H, W) -> (B, n_depth, n_alines); a single (H, W) -> (n_depth, n_alines)."""
        single = frames.ndim == 2
        batch = frames[None] if single else frames
        out = self.xp.empty((batch.shape[0], *self.output_shape), dtype=np.float32)
        self.sample_into(batch, out)
        return out[0] if single else out


def polar_to_cartesian(
    polar: Any,
    image_shape: tuple[int, int],
    center_rc: tuple[float, float],
    pixel_spacing_mm: tuple[float, float],
    spec: InputSpec,
    xp: ModuleType = np,
) -> Any:
    """Resample polar data (..., n_depth, n_alines) back onto the Cartesian image (..., H, W), float32.

    For overlays (probabilities, arcs, attention maps). Interpolation wraps across 0 degrees;
    pixels farther from the centre than the polar grid reaches are 0.
    """
    _check_geometry(image_shape, pixel_spacing_mm)
    if tuple(polar.shape[-2:]) != (spec.n_depth, spec.n_alines):
        raise ValueError(f"polar data must end in ({spec.n_depth}, {spec.n_alines}), got {polar.shape}")
    rows, cols = int(image_shape[0]), int(image_shape[1])
    dy, dx = pixel_spacing_mm
    r_idx, c_idx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    y_mm = (r_idx - center_rc[0]) * dy
    x_mm = (c_idx - center_rc[1]) * dx
    depth_pos = np.hypot(y_mm, x_mm) / spec.depth_spacing_mm - 0.5
    theta = np.mod(np.rad2deg(np.arctan2(y_mm, x_mm)), 360.0)
    aline_pos = theta * (spec.n_alines / 360.0) - 0.5
    index, weight = _corner_map(depth_pos, aline_pos, (spec.n_depth, spec.n_alines), wrap_x=True)
    bilinear = _BilinearMap(index, weight, xp)
    lead = tuple(polar.shape[:-2])
    src = xp.asarray(polar, dtype=np.float32).reshape(-1, spec.n_depth * spec.n_alines)
    out = xp.empty((src.shape[0], rows * cols), dtype=np.float32)
    bilinear.apply_into(src, out)
    return out.reshape(*lead, rows, cols)


def ring_radius_px(center_rc: tuple[float, float], radius_px: float, image_shape: tuple[int, int]) -> float:
    """Radius (pixels) of a ring around `center_rc` drawn to show arcs: the polar grid's reach
    `radius_px`, pulled in so that the ring and a 7 % margin stay inside an image of `image_shape`."""
    row, col = center_rc
    rows, cols = image_shape[:2]
    edge = min(col, cols - 1 - col, row, rows - 1 - row)
    return min(radius_px, max(edge, 1.0) / 1.07)
