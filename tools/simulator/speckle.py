"""Speckle: complex Gaussian scatterers convolved with the imaging point-spread function.

A bank of a few speckle fields in polar form (A-lines x depth) is drawn once per pullback.
The PSF is a Gaussian pulse envelope along depth and a Gaussian beam across A-lines whose
width in A-lines shrinks with depth (the beam has a roughly constant width in mm while the
A-lines fan out), done in the Fourier domain, circular across A-lines. Per frame:
- tissue speckle persists and decorrelates slowly along the pullback: a rotation between two
  bank fields (`cos w * Za + sin w * Zb` keeps the complex Gaussian statistics);
- blood speckle and electronic noise decorrelate frame to frame: random, shifted views.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from tools.simulator.config import DeviceStyle

N_FIELDS = 6
DEPTH_PAD = 32
TEXTURE_SIGMA = 0.4  # log-amplitude spread of tissue heterogeneity
POSITION_STEPS = 10  # tissue speckle positions per decorrelation length
CACHE_SIZE = 48


def _gaussian_response(n: int, sigma_samples: float) -> np.ndarray:
    """Frequency response of a unit-area Gaussian of `sigma_samples` on an n-point FFT grid."""
    f = np.fft.fftfreq(n)
    return np.exp(-2.0 * (np.pi * f * sigma_samples) ** 2)


def _normalise_rows(field: np.ndarray) -> np.ndarray:
    """Unit mean power per depth sample (averaged over A-lines)."""
    power = np.mean(np.abs(field) ** 2, axis=0, keepdims=True)
    return field / np.sqrt(np.maximum(power, 1e-12))


class SpeckleBank:
    """PSF-shaped speckle and tissue texture fields for one pullback."""

    def __init__(self, rng: np.random.Generator, style: DeviceStyle, n_depth: int, depth_mm: float) -> None:
        a = style.n_alines
        self.n_alines, self.n_depth = a, n_depth
        dp = n_depth + DEPTH_PAD
        radius = (np.arange(dp) + 0.5) * depth_mm
        aline_mm_at = lambda r: r * 2 * np.pi / a  # noqa: E731 - arc length of one A-line at r
        axial = _gaussian_response(dp, style.axial_psf_mm / depth_mm)[None, :]
        refs = np.array([0.7, 1.6, 3.4])
        lateral = [_gaussian_response(a, style.lateral_beam_mm / aline_mm_at(r))[:, None] for r in refs]
        blend = np.stack([np.interp(radius, refs, np.eye(3)[k]) for k in range(3)])  # (3, dp)

        fields = np.empty((N_FIELDS, a, dp), dtype=np.complex64)
        for k in range(N_FIELDS):
            white = rng.standard_normal((a, dp)) + 1j * rng.standard_normal((a, dp))
            spectrum = np.fft.fft2(white) * axial
            versions = [np.fft.ifft2(spectrum * lat) for lat in lateral]
            fields[k] = _normalise_rows(sum(blend[j][None, :] * versions[j] for j in range(3)))
        self.fields = fields[:, :, :n_depth]

        tex_lat = _gaussian_response(a, 0.3 / aline_mm_at(2.0))[:, None]
        tex_ax = _gaussian_response(n_depth, 0.12 / depth_mm)[None, :]
        texture = np.empty((N_FIELDS, a, n_depth), dtype=np.float32)
        for k in range(N_FIELDS):
            smooth = np.fft.ifft2(np.fft.fft2(rng.standard_normal((a, n_depth))) * tex_lat * tex_ax).real
            texture[k] = TEXTURE_SIGMA * (smooth - smooth.mean()) / smooth.std()
        self.texture = texture

        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        amp = np.abs(fields).astype(np.float32)
        self.amplitude2 = np.concatenate([amp, amp], axis=1)  # doubled across A-lines for cheap views

    def tissue(self, position: float) -> np.ndarray:
        """Tissue speckle amplitude x texture (A, D) in tissue coordinates at a bank `position`.

        Integer positions are bank fields; in between, a power-preserving rotation of two.
        Positions are quantised to 1/10 (correlation >= 0.99 with the exact one) and cached: with
        the heartbeat the catheter revisits the same slices of tissue over and over.
        """
        key = int(round(position * POSITION_STEPS))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        field = self._tissue_at(key / POSITION_STEPS)
        self._cache[key] = field
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return field

    def _tissue_at(self, position: float) -> np.ndarray:
        k = int(np.floor(position))
        w = (position - k) * np.pi / 2
        a, b = k % N_FIELDS, (k + 1) % N_FIELDS
        c, s = np.float32(np.cos(w)), np.float32(np.sin(w))
        z = np.abs(c * self.fields[a] + s * self.fields[b])
        z *= np.exp(c * self.texture[a] + s * self.texture[b])
        return z

    def random_view(self, rng: np.random.Generator) -> np.ndarray:
        """A fresh-looking speckle amplitude (A, D): a random field, shifted in angle and depth."""
        k = int(rng.integers(N_FIELDS))
        row = int(rng.integers(self.n_alines))
        col = int(rng.integers(DEPTH_PAD))
        return self.amplitude2[k, row:row + self.n_alines, col:col + self.n_depth]
