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

from tools.simulator.appearance import sample_appearance
from tools.simulator.config import PullbackConfig
from tools.simulator.scene import RING_MM, RayScene, Scene
from tools.simulator.speckle import SpeckleBank

LN10_20 = np.log(10.0) / 20.0


def _ramp(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place: a soft step once x = (r - edge) / width + 1/2."""
    return np.clip(x, 0.0, 1.0, out=x)


class PolarRenderer:
    """Renders frames of a `Scene` as uint8 polar images (n, A-lines, depth)."""

    def __init__(self, scene: Scene, config: PullbackConfig, rng: np.random.Generator,
                 n_depth: int, depth_mm: float) -> None:
        style = config.style
        self.scene, self.config, self.style = scene, config, style
        self.frame_seed = int(rng.integers(2**62))  # per-frame noise: frame i is the same however it is rendered
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
        self.appearance = sample_appearance(rng, config.appearance)  # console settings
        self.noise_db = self.appearance.noise_db
        self.dynamic_range = self.appearance.dynamic_range_db
        self.gain_db = self.appearance.gain_db
        self.tgc_db_mm = self.alpha_tissue * self.appearance.tgc_fraction
        self.gamma_table = self.appearance.gamma_table()
        self.speckle_mm = rng.uniform(0.15, 0.4)  # pullback distance over which tissue speckle decorrelates
        self.catheter = self._catheter_image(rng)
        # constants of the per-frame hot path
        self.a_blood = 10 ** (self.blood_db / 20)
        self.a_media = np.float32(10 ** (self.media_db / 20))
        self.a_adventitia = np.float32(10 ** (self.adventitia_db / 20))
        self.a_beyond = np.float32(10 ** (self.beyond_db / 20))
        self.noise_amp = np.float32(10 ** (self.noise_db / 20))
        self.r_over_edge = (self.r / self.edge).astype(np.float32)
        rc = style.catheter_radius_mm + 0.03
        self.blood_start = np.clip((self.r - rc) / self.edge + 0.5, 0, 1).astype(np.float32)
        self.sheath_zone = np.exp(-np.abs(self.r - (rc + 0.12)) / 0.08).astype(np.float32)
        # depth beyond which the catheter's own echoes are negligible (< 1e-4 of plaque)
        self.catheter_depth = int(np.flatnonzero(self.catheter.max(axis=0) > 1e-4).max()) + 1
        offset = self.tgc_db_mm * self.r + self.gain_db + self.dynamic_range * 0.6
        self.display_offset = (offset * 255.0 / self.dynamic_range).astype(np.float32)

    def _catheter_image(self, rng: np.random.Generator) -> np.ndarray:
        """Static echoes of the catheter: sheath ring, a faint inner ring, ring-down (A, D)."""
        s, r = self.style, self.r[None, :]
        rc = s.catheter_radius_mm
        angle = np.deg2rad(self.theta_d)[:, None]
        ripple = 1.0 + 0.25 * np.sin(angle * 3 + rng.uniform(0, 6)) + 0.15 * np.sin(angle * 7 + rng.uniform(0, 6))
        sigma = s.axial_psf_mm * 1.3
        img = 10 ** (rng.uniform(6, 12) / 20) * np.exp(-(((r - rc) / sigma) ** 2)) * ripple
        inner = rng.uniform(0.5, 0.8) * rc
        img += 10 ** (rng.uniform(-6, 4) / 20) * np.exp(-(((r - inner) / sigma) ** 2)) * ripple[::-1]
        ringdown = max(s.ringdown_mm * self.appearance.ringdown_scale, 1e-3)
        zone = np.clip((r - rc) / 0.02, 0, 1) * np.exp(-np.maximum(r - rc, 0) / ringdown)
        img += 10 ** (rng.uniform(4, 10) / 20) * zone * self.bank.random_view(rng)
        return img.astype(np.float32)

    def render(self, frames: np.ndarray) -> np.ndarray:
        """uint8 polar images (n, A, D) of the given frame indices."""
        out = np.empty((len(frames), self.n_alines, self.n_depth), dtype=np.uint8)
        for i, polar in self.iter_frames(frames):
            out[i] = polar
        return out

    def iter_frames(self, frames: np.ndarray):
        """Yield (position in `frames`, uint8 polar image (A, D)) frame by frame."""
        rays = self.scene.rays(frames, self.theta_d)
        for i in range(len(frames)):
            yield i, self._render_one(rays, i, int(frames[i]))

    def _render_one(self, rays: RayScene, i: int, frame: int) -> np.ndarray:
        r = self.r
        b = rays.borders
        rng = np.random.default_rng((self.frame_seed, frame))
        col = lambda a: np.asarray(a[i], dtype=np.float32)[:, None]  # noqa: E731 - (A, 1) column
        lumen, vessel, media, adv = col(b.lumen), col(b.vessel), col(b.media), col(b.adventitia)
        rw = self.r_over_edge  # depth in units of the border width; a step at e is clip(rw - e/w + 1/2)
        k = np.float32(1.0 / self.edge)

        # layered diffuse backscatter (amplitude), soft steps at each border
        a_plaque = np.power(np.float32(10.0), col(b.plaque_db) / 20)
        s_lumen = _ramp(rw - (lumen * k - 0.5))
        tissue = a_plaque * s_lumen
        tissue += (self.a_media - a_plaque) * _ramp(rw - ((vessel - media) * k - 0.5))
        tissue += (self.a_adventitia - self.a_media) * _ramp(rw - (vessel * k - 0.5))
        tissue += (self.a_beyond - self.a_adventitia) * _ramp(0.25 * rw - ((vessel + adv) * (0.25 * k) - 0.5))

        for band in rays.bands:  # perivascular structures scale the backscatter over a depth interval
            if (sub := np.flatnonzero(band.gain[i] != 1.0)).size:
                start = band.start[i, sub, None].astype(np.float32)
                end = band.end[i, sub, None].astype(np.float32)
                inside = _ramp(rw - (start * k - 0.5)) - _ramp(rw - (end * k - 0.5))
                tissue[sub] *= 1.0 + (band.gain[i, sub, None].astype(np.float32) - 1.0) * inside

        # tissue speckle moves with the tissue (rotation, NURD): gather rows by tissue angle
        rows = (rays.tissue_deg[i] * (self.n_alines / 360.0)).astype(np.intp) % self.n_alines
        speckle = self.bank.tissue(rays.z_mm[i] / self.speckle_mm)[rows]
        tissue *= speckle
        signal = tissue
        # blood fills the lumen only: work on the depths up to the deepest lumen border
        near = min(int(np.ceil(float(lumen.max()) * k + 1.0)), self.n_depth)
        blood = self.blood_start[:near] - s_lumen[:, :near]
        np.maximum(blood, 0.0, out=blood)
        blood *= self.bank.random_view(rng)[:, :near]
        blood *= np.float32(self.a_blood * (1 + 0.15 * np.sin(0.7 * frame)))
        signal[:, :near] += blood

        # two-way attenuation (dB): blood up to the lumen border, tissue beyond
        att = r - lumen
        np.maximum(att, 0.0, out=att)
        att *= np.float32(self.alpha_tissue - self.alpha_blood)
        att += self.alpha_blood * r
        extra = rays.plaque_att_db_mm[i]
        if (sub := np.flatnonzero(extra)).size:
            att[sub] += extra[sub, None].astype(np.float32) * np.clip(r - lumen[sub], 0, None)
        bubble = rays.bubble_loss_db[i]
        if (sub := np.flatnonzero(bubble)).size:
            att[sub] += bubble[sub, None].astype(np.float32) * self.blood_start

        # specular echoes (calcium, guidewire, struts) and the transmission loss behind them
        ringing = []
        for reflector in rays.reflectors:
            sub = np.flatnonzero(reflector.amplitude[i])
            if not sub.size:
                continue
            pos = reflector.position[i, sub, None].astype(np.float32)
            width = reflector.width[i, sub, None].astype(np.float32)
            x = (r - pos) / width
            behind = _ramp(0.5 * x)  # loss sets in over two widths behind the echo peak
            echo = np.exp(-x * x)
            echo *= reflector.amplitude[i, sub, None].astype(np.float32)
            if reflector.granular:
                echo *= 0.6 + 0.4 * speckle[sub]
            signal[sub] += echo
            att[sub] += reflector.loss_db[i, sub, None].astype(np.float32) * behind
            if reflector.ringing is not None:
                ringing.append((sub, pos, reflector.amplitude[i, sub, None] * reflector.ringing[i, sub, None]))
        att *= np.float32(-LN10_20)
        signal *= np.exp(att, out=att)

        # metal rings: repeats of its echo every RING_MM behind it, inside its own shadow
        sigma = np.float32(self.style.axial_psf_mm * 1.2)
        for sub, pos, first in ringing:
            amp = (first * np.exp(-LN10_20 * 2 * self.alpha_blood * pos)).astype(np.float32)
            for order in (1, 2, 3):
                x = (r - pos - order * RING_MM) / sigma
                signal[sub] += amp * np.float32(0.5 ** (order - 1)) * np.exp(-x * x)

        # reverberation: the pulse bounces catheter <-> calcium, echoes at 2x and 3x its distance
        rev = rays.reverb_amplitude[i]
        if (sub := np.flatnonzero(rev)).size:
            pos = rays.reverb_position[i, sub, None].astype(np.float32)
            amp = rev[sub, None].astype(np.float32) * np.exp(-LN10_20 * 2 * self.alpha_blood * pos)
            sigma = np.float32(self.style.axial_psf_mm * 2.0)
            for order, gain in ((2, 1.0), (3, 0.35)):
                x = (r - order * pos) / sigma
                signal[sub] += amp * gain * np.exp(-x * x) * (0.5 + 0.5 * speckle[sub])

        signal[:, :self.catheter_depth] += self.catheter[:, :self.catheter_depth]
        sheath = rays.sheath_db[i]
        if (sub := np.flatnonzero(sheath)).size:
            gain = np.power(np.float32(10.0), sheath[sub, None].astype(np.float32) / 20) - 1
            signal[sub] += gain * self.sheath_zone * self.bank.random_view(rng)[sub]

        noise = self.bank.random_view(rng) * self.noise_amp
        power = np.multiply(signal, signal, out=signal)
        power += noise * noise
        return self._compress(power)

    def _compress(self, power: np.ndarray) -> np.ndarray:
        """TGC, log compression and the grey-level curve: echo power -> uint8 (settings vary per pullback)."""
        power += np.float32(1e-12)
        db = np.log10(power, out=power)
        db *= np.float32(10.0 * 255.0 / self.dynamic_range)
        db += self.display_offset
        np.clip(db, 0, 255, out=db)
        return self.gamma_table[db.astype(np.uint8)]
