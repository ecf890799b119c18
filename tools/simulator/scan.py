"""Scan conversion: polar A-line images (n, A, D) -> square Cartesian frames (n, H, W).

The polar image is first upsampled 2x across A-lines by linear interpolation (cheap, on
whole rows), then each output pixel takes the nearest sample through a precomputed index
map. Angles follow docs/conventions.md: from +column towards +row; A-line k covers
[k*360/A, (k+1)*360/A). Pixels beyond the deepest sample are black.
"""

from __future__ import annotations

import numpy as np

UPSAMPLE = 2


class ScanConverter:
    """Precomputed polar -> Cartesian lookup for one geometry."""

    def __init__(self, image_size: int, n_alines: int, n_depth: int, depth_mm: float,
                 pixel_mm: float, centre_rc: tuple[int, int]) -> None:
        self.shape = (image_size, image_size)
        self.n_alines, self.n_depth = n_alines, n_depth
        rows, cols = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
        dy, dx = (rows - centre_rc[0]) * pixel_mm, (cols - centre_rc[1]) * pixel_mm
        radius = np.hypot(dx, dy)
        angle = np.rad2deg(np.arctan2(dy, dx)) % 360.0
        depth_index = np.floor(radius / depth_mm).astype(np.int64)
        sub = np.floor(angle * (UPSAMPLE * n_alines) / 360.0).astype(np.int64) % (UPSAMPLE * n_alines)
        inside = depth_index < n_depth
        index = sub * n_depth + np.minimum(depth_index, n_depth - 1)
        self.blank = UPSAMPLE * n_alines * n_depth  # index of an extra zero sample
        self.index = np.where(inside, index, self.blank).ravel().astype(np.intp)
        self._up = np.zeros(self.blank + 1, dtype=np.uint8)  # upsampled polar + one black sample
        # 2x upsampling: sub-line 2k sits a quarter line before A-line k (3/4 k + 1/4 (k-1)), 2k+1 after

    def __call__(self, polar: np.ndarray) -> np.ndarray:
        """uint8 (n, A, D) -> uint8 (n, H, W)."""
        out = np.empty((polar.shape[0], *self.shape), dtype=np.uint8)
        for k in range(polar.shape[0]):
            self.convert(polar[k], out[k])
        return out

    def convert(self, polar: np.ndarray, out: np.ndarray) -> np.ndarray:
        """One uint8 polar image (A, D) into the uint8 frame `out` (H, W)."""
        a, d = self.n_alines, self.n_depth
        p = polar.astype(np.uint16)
        near = p * np.uint16(3)
        near += np.uint16(2)
        view = self._up[:-1].reshape(a, UPSAMPLE, d)
        before = near.copy()
        before[1:] += p[:-1]
        before[0] += p[-1]
        before >>= 2
        view[:, 0] = before
        near[:-1] += p[1:]
        near[-1] += p[0]
        near >>= 2
        view[:, 1] = near
        np.take(self._up, self.index, out=out.reshape(-1))
        return out
