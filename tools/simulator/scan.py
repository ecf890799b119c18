"""Scan conversion: polar A-line images (n, A, D) -> square Cartesian frames (n, H, W).

The polar image is first upsampled 2x across A-lines by linear interpolation (cheap, on
whole rows), then each output pixel takes the nearest sample through a precomputed index
map. Angles follow CONVENTIONS.md: from +column towards +row; A-line k covers
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
        # 2x upsampling: sub-line 2k sits a quarter line before A-line k (3/4 k + 1/4 (k-1)), 2k+1 after

    def __call__(self, polar: np.ndarray) -> np.ndarray:
        """uint8 (n, A, D) -> uint8 (n, H, W)."""
        n, a, d = polar.shape
        p = polar.astype(np.uint16)
        up = np.empty((n, UPSAMPLE * a * d + 1), dtype=np.uint8)
        up[:, -1] = 0
        view = up[:, :-1].reshape(n, a, UPSAMPLE, d)
        acc = p * 3
        acc += 2
        before = acc.copy()
        before[:, 1:] += p[:, :-1]
        before[:, 0] += p[:, -1]
        before >>= 2
        view[:, :, 0] = before
        acc[:, :-1] += p[:, 1:]
        acc[:, -1] += p[:, 0]
        acc >>= 2
        view[:, :, 1] = acc
        out = np.empty((n, self.index.size), dtype=np.uint8)
        for k in range(n):
            np.take(up[k], self.index, out=out[k])
        return out.reshape(n, *self.shape)
