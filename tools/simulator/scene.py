"""The content of a pullback per A-line: borders, plaque, calcium, confounders, motion.

`Scene` samples everything once from a config and a seed. `Scene.rays(frames, theta_d)`
returns, for a batch of frames and display angles, the per-A-line quantities the acoustic
model needs (`RayScene`); `Scene.tissue_arcs(frame)` gives the calcium arcs in tissue angles,
the single source both of the rendered calcium and of the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from tools.simulator import circular
from tools.simulator.anatomy import Borders, SmoothProcess, Vessel, ray_circle_distance
from tools.simulator.config import PullbackConfig
from tools.simulator.lesions import Segment, place_calcium, place_confounders
from tools.simulator.motion import FrameMotion, Motion

WIRE_RADIUS_MM = 0.18  # 0.014 inch guidewire
STRUT_HALF_WIDTH_MM = 0.05
VISIBLE_SHADOW_DB = 3.0  # metal labelled on the A-lines where its shadow is at least this deep
RING_MM = 0.12  # spacing of the reverberation echoes behind metal (strut, guidewire)
CELL_KINDS = ("guidewire", "stent", "attenuated", "fibrous", "branch", "interplate", "lipid", "bubble",
              "sheath", "vein", "pericardium")  # confounders labelled per A-line in the truth
BRANCH_PUSH_MM = 6.0  # where a side branch opens, the wall moves out of the field of view


@dataclass
class Reflector:
    """Specular reflectors, one per A-line at most: arrays (n, A); amplitude 0 where absent."""

    position: np.ndarray  # mm from the catheter centre
    amplitude: np.ndarray  # linear amplitude relative to fibrous plaque
    loss_db: np.ndarray  # two-way transmission loss behind the reflector
    width: np.ndarray  # thickness of the echo (Gaussian sigma, mm)
    granular: bool = False  # rough surface: the echo carries speckle (calcium), else smooth (metal)
    ringing: np.ndarray | None = None  # (n, A) metal reverberation: echo repeats behind it, each this much weaker


@dataclass
class RayScene:
    """Everything the acoustic model needs about a batch of frames, per A-line (n, A)."""

    z_mm: np.ndarray  # (n,) anatomical position imaged
    tissue_deg: np.ndarray  # tissue angle of each A-line, in [0, 360)
    borders: Borders  # as imaged (side branches open the wall)
    lumen_truth: np.ndarray  # lumen border as an expert traces it (nodules in, branches bridged)
    vessel_truth: np.ndarray
    plaque_att_db_mm: np.ndarray  # extra attenuation inside plaque (attenuated plaque)
    calcium: np.ndarray  # bool: A-line crosses calcium
    reflectors: list[Reflector]
    reverb_amplitude: np.ndarray  # first reverberation behind calcium (0 where none)
    reverb_position: np.ndarray  # distance of the reverberating calcium surface
    bubble_loss_db: np.ndarray  # loss from air near the transducer
    sheath_db: np.ndarray  # extra brightness of sheath reverberation artefacts
    bands: list[Band]  # veins (dark), pericardium (bright), lipid pools in plaque (dark)
    cells: dict[str, np.ndarray]  # confounder kind -> bool (n, A): the A-lines it affects (truth labels)


@dataclass
class Band:
    """A depth interval per A-line whose backscatter is scaled by `gain` (1 where absent)."""

    start: np.ndarray  # mm
    end: np.ndarray  # mm
    gain: np.ndarray  # linear amplitude factor


def _signed_distance(theta: np.ndarray, arc: tuple[float, float]) -> np.ndarray:
    """Degrees from each angle to the nearest arc end: positive inside the arc, negative outside."""
    start, extent = arc
    if extent >= 360.0:
        return np.full_like(theta, 360.0)
    into = (theta - start) % 360.0
    inside = into < extent
    return np.where(inside, np.minimum(into, extent - into), -np.minimum(into - extent, 360.0 - into))


def _arc_weight(theta: np.ndarray, arc: tuple[float, float], ramp_deg: float) -> np.ndarray:
    """1 inside the arc, ramping to 0 over `ramp_deg` inside its ends; 0 outside."""
    start, extent = arc
    if extent >= 360.0:
        return np.ones_like(theta)
    into = (theta - start) % 360.0
    inside = into < extent
    edge = np.minimum(into, extent - into)
    return np.where(inside, np.clip(edge / max(ramp_deg, 1e-6), 0.0, 1.0), 0.0)


class Scene:
    """All sampled content of one pullback."""

    def __init__(self, config: PullbackConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.style = config.style
        self.length_mm = config.n_frames * config.frame_step_mm
        self.vessel = Vessel(rng, self.style)
        self.motion = Motion(config, rng)
        self.calcium = place_calcium(config, rng, self.length_mm)
        self.confounders = place_confounders(config, rng, self.length_mm)
        self.wire_angle = SmoothProcess(rng, rng.uniform(0, 360), rng.uniform(10, 60), (8, 80))
        self.wire_gap = SmoothProcess(rng, rng.uniform(0.05, 0.35), 0.1, (5, 40))
        self.edge_phase = rng.uniform(0, 2 * np.pi, (len(self.calcium), 2))
        self.wire_ringing = float(rng.uniform(0.05, 0.3))

    def z_of(self, frames: np.ndarray) -> np.ndarray:
        """Anatomical position (mm) imaged by each frame: pullback plus cardiac to-and-fro."""
        return frames * self.config.frame_step_mm + self.motion.dz[frames]

    def tissue_arcs(self, frame: int) -> list[tuple[float, float, int]]:
        """Calcium arcs (start, extent, lesion index) in tissue angles; side branches cut them."""
        z = float(self.z_of(np.array([frame]))[0])
        branch = [arc for seg in self.confounders if seg.kind == "branch" and (arc := seg.arc_at(z))]
        out = []
        for index, lesion in enumerate(self.calcium):
            plates = lesion.plates_at(z)
            for start, extent in circular.difference(plates, branch) if branch else plates:
                out.append((start, extent, index))
        return out

    def rays(self, frames: np.ndarray, theta_d: np.ndarray) -> RayScene:
        """Per-A-line content of `frames` (n,) imaged along display angles `theta_d` (A,)."""
        motion: FrameMotion = self.motion.frames(frames)
        z = self.z_of(frames)
        theta = motion.tissue_angles(theta_d) % 360.0
        borders = self.vessel.borders(z, theta, motion.shift_mm, motion.scale)
        shape = theta.shape
        zeros = lambda: np.zeros(shape)  # noqa: E731
        att, bubble, sheath = zeros(), zeros(), zeros()
        calcium = np.zeros(shape, dtype=bool)
        ca = Reflector(np.full(shape, np.inf), zeros(), zeros(), np.full(shape, 0.05), granular=True)
        reverb = zeros()
        strut = Reflector(np.full(shape, np.inf), zeros(), zeros(), np.full(shape, self.style.axial_psf_mm * 1.2),
                          ringing=zeros())
        cap = Reflector(np.full(shape, np.inf), zeros(), zeros(), np.full(shape, 0.05), granular=True)
        cells = {kind: np.zeros(shape, dtype=bool) for kind in CELL_KINDS}
        branch_w = zeros()
        vein = Band(zeros(), zeros(), np.ones(shape))
        pericardium = Band(zeros(), zeros(), np.ones(shape))
        lipid = Band(zeros(), zeros(), np.ones(shape))

        for i in range(len(frames)):
            zi, th = float(z[i]), theta[i]
            for seg in self.confounders:
                arc = seg.arc_at(zi)
                if arc is None:
                    continue
                self._apply_confounder(seg, arc, zi, i, th, borders, att, bubble, sheath, branch_w, strut, cap, cells)
            for lesion in self.calcium:  # plaque between the plates of one deposit
                if lesion.gaps and (whole := lesion.arc_at(zi)):
                    plates = circular.contains(lesion.plates_at(zi), th)
                    cells["interplate"][i] |= circular.contains([whole], th) & ~plates
            for start, extent, index in self.tissue_arcs(int(frames[i])):
                lesion = self.calcium[index]
                mask = circular.contains([(start, extent)], th)
                self._apply_calcium(lesion, index, (start, extent), zi, i, th, mask, borders, ca, reverb)
                calcium[i] |= mask

        for i in range(len(frames)):
            for seg in self.confounders:
                if seg.kind in ("vein", "pericardium", "lipid") and (arc := seg.arc_at(float(z[i]))):
                    band = {"vein": vein, "pericardium": pericardium, "lipid": lipid}[seg.kind]
                    self._band(seg, arc, float(z[i]), i, theta[i], borders, band)
                    cells[seg.kind][i] |= band.gain[i] != 1.0
        lumen_truth, vessel_truth = borders.lumen.copy(), borders.vessel.copy()
        borders.lumen += BRANCH_PUSH_MM * branch_w
        borders.vessel += BRANCH_PUSH_MM * branch_w
        reflectors = [ca, strut, cap]
        if self.config.guidewire:
            wire = self._guidewire(z, theta, borders.lumen)
            cells["guidewire"] |= wire.loss_db > VISIBLE_SHADOW_DB
            reflectors.append(wire)
        cells["stent"] |= strut.loss_db > VISIBLE_SHADOW_DB
        cells["branch"] |= branch_w > 0
        for mask in cells.values():
            mask &= ~calcium
        return RayScene(z, theta, borders, lumen_truth, vessel_truth, att, calcium, reflectors, reverb,
                        ca.position.copy(), bubble, sheath, [vein, pericardium, lipid], cells)

    def _band(self, seg: Segment, arc, zi, i, th, borders: Borders, band: Band) -> None:
        """A lipid pool inside the plaque, the pericardium (bright) or a vein (round, echolucent)."""
        start, extent = arc
        gain = 10 ** (seg.param("echo_db", zi) / 20)
        if seg.kind in ("lipid", "pericardium"):
            w = _arc_weight(th, arc, 15.0)
            hit = w > 0
            if seg.kind == "lipid":
                inner, outer = borders.lumen[i], borders.vessel[i] - borders.media[i]
                top, bottom = (inner + seg.param(k, zi) * (outer - inner) for k in ("inner", "outer"))
            else:
                top = borders.vessel[i] + borders.adventitia[i] + seg.param("gap_mm", zi)
                bottom = top + seg.param("thickness_mm", zi)
            band.start[i, hit], band.end[i, hit] = top[hit], bottom[hit]
            band.gain[i, hit] = 1 + w[hit] * (gain - 1)
            return
        centre = (start + extent / 2) % 360.0
        k_ray = int(np.argmin(np.abs((th - centre + 180.0) % 360.0 - 180.0)))
        outside = borders.vessel[i, k_ray] + borders.adventitia[i, k_ray] + seg.param("gap_mm", zi)
        radius = seg.param("radius_mm", zi)
        d = outside + radius  # vein centre distance from the catheter
        offset = np.deg2rad((th - centre + 180.0) % 360.0 - 180.0)
        perp = d * np.sin(offset)
        hit = (np.abs(perp) < radius) & (np.cos(offset) > 0)
        half = np.sqrt(np.maximum(radius**2 - perp**2, 0.0))
        band.start[i, hit] = (d * np.cos(offset) - half)[hit]
        band.end[i, hit] = (d * np.cos(offset) + half)[hit]
        band.gain[i, hit] = gain

    def _apply_confounder(self, seg: Segment, arc, zi, i, th, borders: Borders, att, bubble, sheath,
                          branch_w, strut: Reflector, cap: Reflector, cells: dict[str, np.ndarray]) -> None:
        kind = seg.kind
        if kind == "stent":
            self._struts(seg, zi, i, th, borders, strut)
            return
        w = _arc_weight(th, arc, 12.0 if kind == "branch" else 6.0)
        if kind in cells:
            cells[kind][i] |= w > 0
        if kind == "attenuated":
            att[i] += w * seg.param("att_db_mm", zi)
            borders.plaque_db[i] += w * (seg.param("echo_db", zi) - borders.plaque_db[i])
            # attenuated plaque is bulky: thicken it by narrowing the lumen a little
            borders.lumen[i] -= w * np.minimum(0.3, 0.5 * (borders.lumen[i] - self.style.catheter_radius_mm - 0.3))
        elif kind == "fibrous":
            borders.plaque_db[i] += w * (seg.param("echo_db", zi) - borders.plaque_db[i])
            room = 0.5 * (borders.lumen[i] - self.style.catheter_radius_mm - 0.3)
            borders.lumen[i] -= w * np.clip(np.minimum(seg.param("bulk_mm", zi), room), 0.0, None)
            if (cap_db := seg.param("cap_db", zi)) > 0:  # a bright fibrous cap: strong echo, almost no shadow
                hit = w > 0
                cap.position[i, hit] = borders.lumen[i, hit] + 0.03
                cap.amplitude[i, hit] = w[hit] * 10 ** (cap_db / 20)
                cap.loss_db[i, hit] = w[hit] * seg.param("cap_loss_db", zi)
        elif kind == "branch":
            branch_w[i] = np.maximum(branch_w[i], w)
        elif kind == "bubble":
            bubble[i] += w * seg.param("loss_db", zi)
        elif kind == "sheath":
            sheath[i] += w * seg.param("echo_db", zi)

    def _struts(self, seg: Segment, zi, i, th, borders: Borders, strut: Reflector) -> None:
        """A deployed stent: the lumen is held open to a round shape, struts sit on its surface."""
        rc = self.style.catheter_radius_mm
        held = ray_circle_distance(0.25 * np.cos(zi), 0.25 * np.sin(zi), seg.param("radius_mm", zi), th)
        borders.lumen[i] = np.maximum(borders.lumen[i], np.maximum(held, rc + 0.6))
        borders.vessel[i] = np.maximum(borders.vessel[i], borders.lumen[i] + borders.media[i] + 0.15)
        n = int(seg.param("n_struts", zi))
        helix = seg.param("helix_deg_mm", zi) * zi
        cell = seg.param("cell_mm", zi)
        for k in range(n):
            if np.sin(2 * np.pi * zi / cell + 2.1 * k) < -0.35:  # strut out of this imaging plane
                continue
            angle = (360.0 * k / n + helix + 9.0 * np.sin(1.7 * k)) % 360.0
            k_ray = int(np.argmin(np.abs((th - angle + 180.0) % 360.0 - 180.0)))
            r = borders.lumen[i, k_ray]
            perp = r * np.sin(np.deg2rad((th - angle + 180.0) % 360.0 - 180.0))
            weight = ndtr((STRUT_HALF_WIDTH_MM - np.abs(perp)) / self.style.lateral_beam_mm)
            hit = weight > 0.02
            strut.position[i, hit] = r - 0.02
            strut.amplitude[i, hit] = weight[hit] * 10 ** (seg.param("strut_db", zi) / 20)
            strut.loss_db[i, hit] = weight[hit] * seg.param("strut_loss_db", zi)
            strut.ringing[i, hit] = seg.param("ringing", zi)

    def _apply_calcium(self, lesion: Segment, index: int, arc, zi, i, th, mask, borders: Borders,
                       ca: Reflector, reverb) -> None:
        if lesion.param("nodule", zi) > 0.5:
            start, extent = arc
            into = ((th - start) % 360.0) / max(extent, 1e-6)
            bump = np.where(mask, np.sin(np.pi * np.clip(into, 0, 1)) ** 0.7, 0.0)
            room = np.maximum(borders.lumen[i] - self.style.catheter_radius_mm - 0.2, 0.0)
            protrusion = np.minimum(lesion.param("nodule_height", zi) * bump, room)
            borders.lumen[i] -= protrusion
            depth = 0.0
        else:
            depth = lesion.param("depth", zi)
        inner = borders.lumen[i]
        outer = borders.vessel[i] - borders.media[i]
        position = inner + 0.03 + depth * np.maximum(outer - inner - 0.1, 0.0)
        # the beam straddles the arc ends: echo and shadow fade over the beam width
        beam_deg = np.rad2deg(self.style.lateral_beam_mm / np.maximum(position, 0.5))
        weight = ndtr(_signed_distance(th, arc) / beam_deg)
        present = weight > 0.02
        phase = self.edge_phase[index]
        rough = 3.0 * np.sin(np.deg2rad(th) * 7 + phase[0]) + 2.0 * np.sin(np.deg2rad(th) * 17 + phase[1])
        amplitude = weight * 10 ** ((lesion.param("edge_db", zi) + rough) / 20)
        loss = weight * (40.0 + 50.0 * lesion.param("thickness", zi))
        closer = present & (position < ca.position[i])
        ca.position[i] = np.where(closer, position, ca.position[i])
        ca.amplitude[i] = np.where(closer, amplitude, ca.amplitude[i])
        ca.loss_db[i] = np.where(closer, loss, ca.loss_db[i])
        ca.width[i] = np.where(closer, lesion.param("edge_mm", zi), ca.width[i])
        if lesion.param("reverberation", zi) > 0.5:
            reverb[i] = np.where(closer, 0.12 * amplitude, reverb[i])

    def guidewire_at(self, frame: int) -> tuple[float, float]:
        """(tissue angle deg, distance of the wire centre from the catheter centre mm) in a frame."""
        frames = np.array([frame])
        z = self.z_of(frames)
        angle = float(self.wire_angle(z)[0]) % 360.0
        lumen = self.rays(frames, np.array([angle])).borders.lumen[0, 0]
        return angle, float(self._wire_distance(z, np.array([lumen]))[0])

    def _wire_distance(self, z: np.ndarray, lumen_at_wire: np.ndarray) -> np.ndarray:
        rc = self.style.catheter_radius_mm
        room = lumen_at_wire - rc - 2 * WIRE_RADIUS_MM - 0.02
        return rc + WIRE_RADIUS_MM + np.clip(self.wire_gap(z), 0.02, np.maximum(room, 0.02))

    def _guidewire(self, z: np.ndarray, theta: np.ndarray, lumen: np.ndarray) -> Reflector:
        """A round wire just outside the catheter: bright front surface, full shadow behind."""
        angle = self.wire_angle(z)[:, None]
        offset = np.deg2rad((theta - angle + 180.0) % 360.0 - 180.0)
        k_ray = np.argmin(np.abs(offset), axis=1)
        d = self._wire_distance(z, lumen[np.arange(len(z)), k_ray])[:, None]
        perp = d * np.sin(offset)
        weight = ndtr((WIRE_RADIUS_MM - np.abs(perp)) / self.style.lateral_beam_mm) * (np.cos(offset) > 0)
        hit = weight > 0.02
        front = d * np.cos(offset) - np.sqrt(np.maximum(WIRE_RADIUS_MM**2 - perp**2, 0.0))
        return Reflector(np.where(hit, front, np.inf), np.where(hit, weight * 10 ** (22 / 20), 0.0),
                         np.where(hit, weight * 70.0, 0.0), np.full(theta.shape, self.style.axial_psf_mm * 1.5),
                         ringing=np.where(hit, self.wire_ringing, 0.0))
