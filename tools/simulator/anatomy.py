"""Vessel anatomy along the pullback: lumen and vessel (EEM) borders, media, plaque texture.

Everything is a smooth function of the longitudinal position `z` (mm) and the tissue angle
`theta` (degrees, measured at the catheter centre as in docs/conventions.md). Borders are eccentric
circles seen from the catheter, deformed by low-order harmonics, so that the catheter sits
inside the lumen and the distance to each border along any A-line has a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.simulator.config import DeviceStyle


class SmoothProcess:
    """A random smooth function of z (mm): mean plus a few sinusoids of random phase."""

    def __init__(self, rng: np.random.Generator, mean: float, amplitude: float,
                 wavelengths_mm: tuple[float, float] = (4.0, 40.0), n_modes: int = 4) -> None:
        self.mean = float(mean)
        lo, hi = wavelengths_mm
        self.freq = 2 * np.pi / np.exp(rng.uniform(np.log(lo), np.log(hi), n_modes))
        self.phase = rng.uniform(0, 2 * np.pi, n_modes)
        weights = rng.uniform(0.3, 1.0, n_modes)
        self.amp = amplitude * weights / np.sqrt(np.sum(weights**2) / 2)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return self.mean + np.sum(self.amp * np.sin(z[..., None] * self.freq + self.phase), axis=-1)


def ray_circle_distance(centre_x: np.ndarray, centre_y: np.ndarray, radius: np.ndarray,
                        theta_deg: np.ndarray) -> np.ndarray:
    """Distance from the catheter (origin) along angle `theta` to a circle that contains it.

    Inputs broadcast; x is the +column direction, y the +row direction (docs/conventions.md).
    """
    t = np.deg2rad(theta_deg)
    along = centre_x * np.cos(t) + centre_y * np.sin(t)
    perp2 = centre_x**2 + centre_y**2 - along**2
    return along + np.sqrt(np.maximum(radius**2 - perp2, 1e-6))


@dataclass
class Borders:
    """Per-ray radii (mm) of one batch of frames, arrays (n, A)."""

    lumen: np.ndarray
    vessel: np.ndarray  # external elastic membrane (outer edge of the media)
    media: np.ndarray  # media thickness
    adventitia: np.ndarray  # thickness of the bright adventitia band
    plaque_db: np.ndarray  # echogenicity of plaque relative to fibrous tissue


class Vessel:
    """A coronary segment: smooth lumen, plaque, media and adventitia along the pullback."""

    def __init__(self, rng: np.random.Generator, style: DeviceStyle) -> None:
        rc = style.catheter_radius_mm
        self.catheter_radius = rc
        self.lumen_radius = SmoothProcess(rng, rng.uniform(1.25, 1.9), rng.uniform(0.1, 0.3), (6, 50))
        self.ecc_frac = SmoothProcess(rng, rng.uniform(0.2, 0.6), 0.2, (5, 40))
        self.ecc_dir = SmoothProcess(rng, rng.uniform(0, 360), rng.uniform(20, 90), (8, 60))
        self.lumen_a2 = SmoothProcess(rng, 0.0, rng.uniform(0.03, 0.1), (5, 40))
        self.lumen_p2 = SmoothProcess(rng, rng.uniform(0, 360), 60, (8, 60))
        self.lumen_a3 = SmoothProcess(rng, 0.0, 0.03, (3, 20))
        self.plaque = SmoothProcess(rng, rng.uniform(0.35, 1.1), rng.uniform(0.1, 0.35), (5, 40))
        self.plaque_ecc = SmoothProcess(rng, rng.uniform(0.1, 0.6), 0.2, (5, 40))
        self.plaque_dir = SmoothProcess(rng, rng.uniform(0, 360), 80, (8, 60))
        self.media = SmoothProcess(rng, rng.uniform(0.09, 0.17), 0.03, (5, 30))
        self.adventitia = SmoothProcess(rng, rng.uniform(0.25, 0.5), 0.08, (5, 30))
        self.plaque_db_mean = SmoothProcess(rng, rng.uniform(-4.0, 1.0), 2.0, (4, 30))
        self.plaque_db_var = SmoothProcess(rng, 0.0, 2.5, (3, 20))
        self.plaque_db_dir = SmoothProcess(rng, rng.uniform(0, 360), 90, (4, 30))

    def borders(self, z: np.ndarray, theta_t: np.ndarray, shift_mm: np.ndarray, scale: np.ndarray) -> Borders:
        """Borders at positions `z` (n,) along tissue angles `theta_t` (n, A).

        `shift_mm` (n, 2) moves the vessel relative to the catheter (cardiac translation) and
        `scale` (n,) pulsates it.
        """
        zc = z[:, None]
        rc = self.catheter_radius
        r_lumen = np.maximum(self.lumen_radius(z), rc + 0.5) * scale
        ecc = np.clip(self.ecc_frac(z), 0.0, 0.85) * (r_lumen - rc - 0.3)
        direction = np.deg2rad(self.ecc_dir(z))
        cx = ecc * np.cos(direction) + shift_mm[:, 0]
        cy = ecc * np.sin(direction) + shift_mm[:, 1]
        # keep the catheter inside the lumen after the cardiac shift
        d = np.hypot(cx, cy)
        limit = np.maximum(r_lumen - rc - 0.25, 0.0)
        shrink = np.where(d > limit, limit / np.maximum(d, 1e-9), 1.0)
        cx, cy = cx * shrink, cy * shrink
        shape = (1.0 + self.lumen_a2(zc) * np.cos(np.deg2rad(2 * (theta_t - self.lumen_p2(zc))))
                 + self.lumen_a3(zc) * np.cos(np.deg2rad(3 * theta_t + 40.0)))
        lumen = ray_circle_distance(cx[:, None], cy[:, None], r_lumen[:, None], theta_t) * shape
        lumen = np.maximum(lumen, rc + 0.15)

        media = np.clip(self.media(zc), 0.06, 0.25) * np.ones_like(theta_t)
        plaque_mean = np.clip(self.plaque(z), 0.15, 1.6)
        pe = np.clip(self.plaque_ecc(z), 0.0, 0.8) * plaque_mean
        pdir = np.deg2rad(self.plaque_dir(z))
        ex, ey = cx + pe * np.cos(pdir), cy + pe * np.sin(pdir)
        r_eem = r_lumen + plaque_mean + np.clip(self.media(z), 0.06, 0.25)
        # keep the vessel within ~4.5 mm of the catheter
        reach = np.hypot(ex, ey) + r_eem * 1.05
        fit = np.minimum(1.0, 4.5 / reach)
        vessel = ray_circle_distance(ex[:, None], ey[:, None], (r_eem * fit)[:, None], theta_t)
        vessel = vessel * (1.0 + 0.5 * self.lumen_a2(zc) * np.cos(np.deg2rad(2 * (theta_t - self.lumen_p2(zc)))))
        vessel = np.maximum(vessel, lumen + media + 0.08)
        adventitia = np.clip(self.adventitia(zc), 0.15, 0.7) * np.ones_like(theta_t)
        plaque_db = (self.plaque_db_mean(zc)
                     + self.plaque_db_var(zc) * np.cos(np.deg2rad(theta_t - self.plaque_db_dir(zc))))
        return Borders(lumen, vessel, media, adventitia, plaque_db)
