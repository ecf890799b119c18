"""Image formation along each A-line: backscatter, specular echoes, attenuation and shadows,
electronic noise, time-gain compensation and log compression to 8 bit.

Per A-line the echo amplitude at depth r is
    (diffuse(r) * speckle(r) + specular(r)) * 10^(-attenuation_db(r) / 20)
where diffuse is the layered tissue backscatter (blood, plaque, media, adventitia, beyond),
specular are the coherent echoes of calcium, guidewire and stent struts (Gaussian in depth,
the pulse envelope), and attenuation_db accumulates two-way tissue attenuation plus the
transmission loss of every reflector passed. Behind calcium the loss is 45-90 dB, so the
signal falls to the noise floor: the acoustic shadow is a consequence, not a painted band.
"""

from __future__ import annotations

import numpy as np

from tools.simulator.config import PullbackConfig
from tools.simulator.scene import RayScene, Scene
from tools.simulator.speckle import SpeckleBank

LN10_20 = np.log(10.0) / 20.0


def _step(r: np.ndarray, edge: np.ndarray, width: float) -> np.ndarray:
    """Soft 0 -> 1 step at `edge` (n, A, 1) over `width` mm, for depths r (D,)."""
    x = (r - edge) * (1.0 / width) + 0.5
    np.clip(x, 0.0, 1.0, out=x)
    return x


class PolarRenderer:
    """Renders frames of a `Scene` as uint8 polar images (n, A-lines, depth)."""

    def __init__(self, scene: Scene, config: PullbackConfig, rng: np.random.Generator,
                 n_depth: int, depth_mm: float) -> None:
        style = config.style
        self.scene, self.config, self.style, self.rng = scene, config, style, rng
        self.n_depth, self.depth_mm = n_depth, depth_mm
        self.n_alines = style.n_alines
        self.theta_d = (np.arange(self.n_alines) + 0.5) * 360.0 / self.n_alines
        self.r = ((np.arange(n_depth) + 0.5) * depth_mm).astype(np.float32)
        self.bank = SpeckleBank(rng, style, n_depth, depth_mm)
        self.edge = max(style.axial_psf_mm * 1.5, depth_mm)
        f = style.frequency_mhz / 40.0
        # per-pullback acoustic settings (operator and patient variation)
        self.blood_db = style.blood_db + rng.uniform(-3, 3)
        self.media_db = rng.uniform(-20, -13)
        self.adventitia_db = rng.uniform(5, 11)
        self.beyond_db = rng.uniform(-5, 1)
        self.alpha_blood = 0.35 * f
        self.alpha_tissue = style.tissue_att_db_mm * rng.uniform(0.8, 1.25)
        self.noise_db = rng.uniform(-40, -33)
        self.dynamic_range = rng.uniform(48, 62)
        self.gain_db = rng.uniform(-6, 2)
        self.tgc_db_mm = self.alpha_tissue * rng.uniform(0.5, 0.9)
        self.gamma = rng.uniform(0.8, 1.3)
        self.speckle_mm = rng.uniform(0.15, 0.4)  # pullback distance over which tissue speckle decorrelates
        self.lut = np.clip(255.0 * (np.arange(256) / 255.0) ** self.gamma, 0, 255).astype(np.uint8)
        self.catheter = self._catheter_image(rng)

    def _catheter_image(self, rng: np.random.Generator) -> np.ndarray:
        """Static echoes of the catheter: sheath ring, a faint inner ring, ring-down (A, D)."""
        s, r = self.style, self.r[None, :]
        rc = s.catheter_radius_mm
        angle = np.deg2rad(self.theta_d)[:, None]
        ripple = 1.0 + 0.25 * np.sin(angle * 3 + rng.uniform(0, 6)) + 0.15 * np.sin(angle * 7 + rng.uniform(0, 6))
        sigma = s.axial_psf_mm * 1.3
        img = 10 ** (rng.uniform(6, 12) / 20) * np.exp(-(((r - rc) / sigma) ** 2)) * ripple
        img += 10 ** (rng.uniform(-6, 4) / 20) * np.exp(-(((r - rng.uniform(0.5, 0.8) * rc) / sigma) ** 2)) * ripple[::-1]
        zone = np.clip((r - rc) / 0.02, 0, 1) * np.exp(-np.maximum(r - rc, 0) / max(s.ringdown_mm, 1e-3))
        img += 10 ** (rng.uniform(4, 10) / 20) * zone * self.bank.random_view(rng)
        return img.astype(np.float32)

    def render(self, frames: np.ndarray) -> np.ndarray:
        """uint8 polar images (n, A, D) of the given frame indices."""
        rays = self.scene.rays(frames, self.theta_d)
        out = np.empty((len(frames), self.n_alines, self.n_depth), dtype=np.uint8)
        for i in range(len(frames)):
            out[i] = self._render_one(rays, i, int(frames[i]))
        return self.lut[out]

    def _render_one(self, rays: RayScene, i: int, frame: int) -> np.ndarray:
        r, w = self.r, self.edge
        b = rays.borders
        col = lambda a: np.asarray(a[i], dtype=np.float32)[:, None]  # noqa: E731 - (A, 1) column
        lumen, vessel, media, adv = col(b.lumen), col(b.vessel), col(b.media), col(b.adventitia)
        rc = np.float32(self.style.catheter_radius_mm + 0.03)

        # layered diffuse backscatter (amplitude), soft steps at each border
        a_plaque = np.power(np.float32(10.0), col(b.plaque_db) / 20)
        a_media = np.float32(10 ** (self.media_db / 20))
        a_adv = np.float32(10 ** (self.adventitia_db / 20))
        a_beyond = np.float32(10 ** (self.beyond_db / 20))
        s_lumen = _step(r, lumen, w)
        tissue = a_plaque * s_lumen
        tissue += (a_media - a_plaque) * _step(r, vessel - media, w)
        tissue += (a_adv - a_media) * _step(r, vessel, w)
        tissue += (a_beyond - a_adv) * _step(r, vessel + adv, 4 * w)

        # tissue speckle moves with the tissue (rotation, NURD): gather rows by tissue angle
        rows = (rays.tissue_deg[i] * (self.n_alines / 360.0)).astype(np.intp) % self.n_alines
        speckle = self.bank.tissue(rays.z_mm[i] / self.speckle_mm)[rows]
        tissue *= speckle
        blood_amp = np.float32(10 ** (self.blood_db / 20) * (1 + 0.15 * np.sin(0.7 * frame)))
        blood = (_step(r, rc, w) - s_lumen) * blood_amp
        blood *= self.bank.random_view(self.rng)
        signal = tissue + blood

        # two-way attenuation (dB) along each A-line
        att = self.alpha_blood * np.minimum(r, lumen)
        att += self.alpha_tissue * np.maximum(r - lumen, 0)
        extra = rays.plaque_att_db_mm[i]
        if (sub := np.flatnonzero(extra)).size:
            att[sub] += extra[sub, None].astype(np.float32) * np.clip(r - lumen[sub], 0, None)
        bubble = rays.bubble_loss_db[i]
        if (sub := np.flatnonzero(bubble)).size:
            att[sub] += bubble[sub, None].astype(np.float32) * _step(r, rc, w)[None, :]

        # specular echoes (calcium, guidewire, struts) and the transmission loss behind them
        for reflector in rays.reflectors:
            sub = np.flatnonzero(reflector.amplitude[i])
            if not sub.size:
                continue
            pos = reflector.position[i, sub, None].astype(np.float32)
            width = reflector.width[i, sub, None].astype(np.float32)
            x = (r - pos) / width
            echo = reflector.amplitude[i, sub, None].astype(np.float32) * np.exp(-x * x)
            if reflector.granular:
                echo *= 0.35 + 0.65 * speckle[sub]
            signal[sub] += echo
            att[sub] += reflector.loss_db[i, sub, None].astype(np.float32) * _step(r, pos + width, 2 * width)
        signal *= np.exp(-LN10_20 * att)

        # reverberation: the pulse bounces catheter <-> calcium, echoes at 2x and 3x its distance
        rev = rays.reverb_amplitude[i]
        if (sub := np.flatnonzero(rev)).size:
            pos = rays.reverb_position[i, sub, None].astype(np.float32)
            amp = rev[sub, None].astype(np.float32) * np.exp(-LN10_20 * 2 * self.alpha_blood * pos)
            sigma = np.float32(self.style.axial_psf_mm * 2.0)
            for order, gain in ((2, 1.0), (3, 0.35)):
                x = (r - order * pos) / sigma
                signal[sub] += amp * gain * np.exp(-x * x) * (0.5 + 0.5 * speckle[sub])

        signal += self.catheter
        sheath = rays.sheath_db[i]
        if (sub := np.flatnonzero(sheath)).size:
            zone = np.exp(-np.abs(r - (rc + 0.12)) / 0.08)
            gain = np.power(np.float32(10.0), sheath[sub, None].astype(np.float32) / 20) - 1
            signal[sub] += gain * zone * self.bank.random_view(self.rng)[sub]

        noise = self.bank.random_view(self.rng) * np.float32(10 ** (self.noise_db / 20))
        power = signal * signal
        power += noise * noise
        return self._compress(power)

    def _compress(self, power: np.ndarray) -> np.ndarray:
        """TGC and log compression of echo power to uint8 (before the grey map)."""
        db = np.log10(power + 1e-12, out=power)
        db *= np.float32(10.0 * 255.0 / self.dynamic_range)
        offset = (self.tgc_db_mm * self.r + self.gain_db + self.dynamic_range * 0.6) * (255.0 / self.dynamic_range)
        db += offset.astype(np.float32)
        np.clip(db, 0, 255, out=db)
        return db.astype(np.uint8)
