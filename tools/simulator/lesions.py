"""Calcium lesions and confounders placed along the pullback, each an arc that evolves with z.

A `Segment` occupies `[z0, z0 + length)` mm; at position z it covers an arc of tissue angles
centred on `centre(z)` with an extent that rises from zero, plateaus and falls again, so
lesions start and end smoothly. Calcium lesions add depth, thickness, brightness and the
optional reverberation and nodule; confounders are plain segments of a given kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tools.simulator import circular
from tools.simulator.config import LesionSpec, PullbackConfig

CONFOUNDER_KINDS = ("attenuated", "lipid", "fibrous", "branch", "bubble", "stent", "sheath", "vein", "pericardium")


@dataclass
class Segment:
    """An arc-shaped structure along `[z0, z0 + length)` mm of the pullback."""

    kind: str
    z0: float
    length: float
    max_arc: float
    centre0: float
    drift: float = 0.0
    sharpness: float = 0.5  # exponent of the sin envelope: small = flat top, abrupt ends
    wobble: float = 0.0  # relative extent modulation
    wobble_phase: float = 0.0
    params: dict = field(default_factory=dict)
    # calcium in plates: (centre as a share of the arc, width deg) of each plaque gap between them
    gaps: tuple[tuple[float, float], ...] = ()

    def plates_at(self, z: float) -> list[tuple[float, float]]:
        """The arc at z split into plates by `gaps` (tissue, not calcium, between them)."""
        arc = self.arc_at(z)
        if arc is None:
            return []
        if not self.gaps:
            return [arc]
        start, extent = arc
        room = extent / (len(self.gaps) + 1)  # a gap never takes more than its plate's share
        holes = [((start + share * extent - min(width, 0.5 * room) / 2) % 360.0, min(width, 0.5 * room))
                 for share, width in self.gaps]
        return circular.difference([arc], holes)

    def arc_at(self, z: float) -> tuple[float, float] | None:
        """(start_deg, extent_deg) in tissue angles at position z, or None outside the segment."""
        u = (z - self.z0) / self.length
        if not 0.0 < u < 1.0:
            return None
        envelope = np.sin(np.pi * u) ** self.sharpness
        mod = 1.0 + self.wobble * np.sin(2 * np.pi * 3.0 * u + self.wobble_phase)
        extent = float(min(360.0, self.max_arc * min(1.0, 1.25 * envelope) * mod))
        if extent < 3.0:
            return None
        centre = self.centre0 + self.drift * (u - 0.5)
        if extent >= 360.0:
            return (centre % 360.0, 360.0)
        return ((centre - extent / 2) % 360.0, extent)

    def param(self, name: str, z: float) -> float:
        """A parameter that may vary linearly over the segment: stored as (at start, at end)."""
        start, end = self.params[name]
        u = float(np.clip((z - self.z0) / self.length, 0.0, 1.0))
        return start + (end - start) * u


def calcium_from_spec(spec: LesionSpec, rng: np.random.Generator) -> Segment:
    """A calcium segment exactly as specified."""
    return Segment(
        "calcium", spec.start_mm, spec.length_mm, spec.max_arc_deg, spec.centre_deg, spec.drift_deg,
        sharpness=0.25,
        params=dict(
            depth=(spec.depth_fraction, spec.depth_fraction),
            thickness=(spec.thickness_mm, spec.thickness_mm),
            edge_db=(float(rng.uniform(18, 24)),) * 2,
            reverberation=(float(spec.reverberation),) * 2,
            nodule=(float(spec.nodule),) * 2,
            nodule_height=(0.45, 0.45),
            edge_mm=(0.1, 0.1),
        ),
    )


@dataclass(frozen=True)
class CalciumPattern:
    """One morphological class of calcium: its share of lesions, length (mm) and maximum arc (deg)."""

    name: str
    share: float
    length_mm: tuple[float, float]  # log-uniform
    arc_deg: tuple[float, float]  # uniform
    plates: float  # probability that the deposit is several plates with plaque between them


# Classes after the IVUS literature (sources in docs/simulator.md): spotty calcium is < 90 deg
# and < 4 mm long; lesion calcium has a mean arc of 115 +- 110 deg and a mean length of
# 3.5 +- 3.7 mm (Mintz 1995); length grows with the largest arc (R = 0.75, PubMed 17384454);
# long (> 5 mm), wide (> 270 deg) deposits are what the IVUS calcium score counts (Zhang 2021).
# Mixture means: arc 128 deg, length 4.3 mm.
CALCIUM_PATTERNS = (
    CalciumPattern("spotty", 0.45, (0.7, 4.0), (15.0, 90.0), 0.0),
    CalciumPattern("moderate", 0.35, (2.0, 8.0), (90.0, 200.0), 0.35),
    CalciumPattern("extensive", 0.20, (4.0, 20.0), (180.0, 360.0), 0.45),
)
# depth of the leading edge along a lesion (Mintz 1995): only superficial 48 %, only deep 28 %,
# both (superficial at one end, deep at the other) 24 %
DEPTH_SHARES = {"superficial": 0.48, "deep": 0.28, "both": 0.24}


def draw_pattern(rng: np.random.Generator) -> CalciumPattern:
    shares = np.array([p.share for p in CALCIUM_PATTERNS])
    return CALCIUM_PATTERNS[int(rng.choice(len(CALCIUM_PATTERNS), p=shares / shares.sum()))]


def random_calcium(rng: np.random.Generator, z0: float, pattern: CalciumPattern) -> Segment:
    """A calcium lesion of a morphological class: length, arc, depth, thickness, plates, extras."""
    lo, hi = np.log(pattern.length_mm)
    length = float(np.exp(rng.uniform(lo, hi)))
    max_arc = float(rng.uniform(*pattern.arc_deg))
    depth = str(rng.choice(list(DEPTH_SHARES), p=list(DEPTH_SHARES.values())))
    if depth == "superficial":
        d0 = d1 = 0.0
    elif depth == "deep":
        d0 = float(rng.uniform(0.25, 0.75))
        d1 = float(np.clip(d0 + rng.normal(0, 0.15), 0.25, 0.8))
    else:
        d0, d1 = (0.0, float(rng.uniform(0.3, 0.75)))[:: 1 if rng.random() < 0.5 else -1]
    nodule = rng.random() < 0.12 and max_arc < 200
    edge = rng.uniform(15.0, 25.0)
    gaps: tuple[tuple[float, float], ...] = ()
    if rng.random() < pattern.plates:
        n_gaps = int(rng.integers(1, 4))  # 2-4 plates
        shares = np.sort(rng.uniform(0.15, 0.85, n_gaps))
        gaps = tuple((float(c), float(rng.uniform(15.0, 50.0))) for c in shares)
    return Segment(
        "calcium", z0, length, max_arc, rng.uniform(0, 360), rng.normal(0, 40 if pattern.name == "spotty" else 60),
        sharpness=float(rng.uniform(0.2, 0.6)), wobble=float(rng.uniform(0, 0.25)),
        wobble_phase=float(rng.uniform(0, 2 * np.pi)),
        params=dict(
            depth=(d0, d1),
            thickness=(float(rng.uniform(0.1, 1.0)), float(rng.uniform(0.1, 1.0))),
            edge_db=(edge, edge + rng.normal(0, 2)),
            reverberation=(float(rng.random() < 0.3),) * 2,
            nodule=(float(nodule),) * 2,
            nodule_height=(float(rng.uniform(0.3, 0.7)),) * 2,
            edge_mm=(float(rng.uniform(0.06, 0.15)),) * 2,
        ),
        gaps=gaps,
    )


def _mean_length_mm() -> float:
    """Expected lesion length over the patterns (log-uniform means)."""
    total = 0.0
    for p in CALCIUM_PATTERNS:
        lo, hi = p.length_mm
        total += p.share * (hi - lo) / np.log(hi / lo)
    return total / sum(p.share for p in CALCIUM_PATTERNS)


def place_calcium(config: PullbackConfig, rng: np.random.Generator, length_mm: float) -> list[Segment]:
    """Calcium lesions for a pullback of `length_mm`: explicit specs, or random ones (lengths and
    arcs from `CALCIUM_PATTERNS`) that cover about `config.calcium_fraction` of its length."""
    if config.lesions is not None:
        return [calcium_from_spec(spec, rng) for spec in config.lesions]
    fraction = config.calcium_fraction
    if fraction <= 0:
        return []
    lesions: list[Segment] = []
    mean_len = _mean_length_mm()
    z = -rng.uniform(0, mean_len) * (1 - fraction) / fraction
    while True:
        lesion = random_calcium(rng, 0.0, draw_pattern(rng))
        z += rng.exponential(mean_len * (1 - fraction) / fraction)
        if z >= length_mm:
            break
        lesion.z0 = z
        lesions.append(lesion)
        z += lesion.length * rng.uniform(0.6, 1.0)  # lesions may overlap a little
    return lesions


def place_confounders(config: PullbackConfig, rng: np.random.Generator, length_mm: float) -> list[Segment]:
    """Attenuated and dense fibrous plaque, side branches, stent, catheter artefacts."""
    out: list[Segment] = []

    def spans(count: int, lo: float, hi: float) -> list[tuple[float, float]]:
        result = []
        for _ in range(count):
            length = float(min(rng.uniform(lo, hi), max(length_mm * 0.4, 0.5)))
            result.append((float(rng.uniform(-0.2 * length, max(length_mm - 0.8 * length, 0.0))), length))
        return result

    per_cm = length_mm / 10.0  # enabled kinds appear at least once
    if config.attenuated_plaque:
        for z0, length in spans(max(1, rng.poisson(0.25 * per_cm)), 2.0, 10.0):
            out.append(Segment("attenuated", z0, length, rng.uniform(30, 160), rng.uniform(0, 360), rng.normal(0, 40),
                               sharpness=0.4, params=dict(att_db_mm=(rng.uniform(5, 25),) * 2,
                                                          echo_db=(rng.uniform(-8, 2),) * 2)))
    if config.attenuated_plaque:  # echolucent lipid pools inside the plaque, little attenuation
        for z0, length in spans(max(1, rng.poisson(0.3 * per_cm)), 2.0, 10.0):
            out.append(Segment("lipid", z0, length, rng.uniform(30, 130), rng.uniform(0, 360), rng.normal(0, 40),
                               sharpness=0.5, params=dict(echo_db=(rng.uniform(-14, -7),) * 2,
                                                          inner=(rng.uniform(0.15, 0.35),) * 2,
                                                          outer=(rng.uniform(0.6, 0.9),) * 2)))
    if config.dense_fibrous:
        for z0, length in spans(max(1, rng.poisson(0.3 * per_cm)), 2.0, 12.0):
            # thick, dense, echo-bright plaque that does not shadow; half of it with a bright cap
            cap = rng.random() < 0.5
            out.append(Segment("fibrous", z0, length, rng.uniform(30, 200), rng.uniform(0, 360), rng.normal(0, 40),
                               sharpness=0.4, params=dict(echo_db=(rng.uniform(6, 16),) * 2,
                                                          bulk_mm=(rng.uniform(0.2, 0.7),) * 2,
                                                          cap_db=(rng.uniform(8, 16) if cap else 0.0,) * 2,
                                                          cap_loss_db=(rng.uniform(0.5, 3.0),) * 2)))
    if config.side_branches:
        for z0, length in spans(max(1, rng.poisson(0.35 * per_cm)), 1.0, 5.0):
            out.append(Segment("branch", z0, length, rng.uniform(30, 150), rng.uniform(0, 360), rng.normal(0, 15),
                               sharpness=0.5))
    if config.stent:
        for z0, length in spans(1, 8.0, 30.0):
            out.append(Segment("stent", z0, length, 360.0, 0.0, sharpness=0.02,
                               params=dict(n_struts=(float(rng.integers(6, 21)),) * 2,
                                           strut_loss_db=(rng.uniform(12, 35),) * 2,
                                           strut_db=(rng.uniform(14, 24),) * 2,
                                           ringing=(rng.uniform(0.0, 0.35),) * 2,
                                           helix_deg_mm=(rng.uniform(-40, 40),) * 2,
                                           cell_mm=(rng.uniform(1.0, 2.5),) * 2,
                                           radius_mm=(rng.uniform(1.3, 1.75),) * 2)))
    if config.catheter_artefacts:
        for z0, length in spans(max(1, rng.poisson(0.15 * per_cm)), 0.5, 5.0):
            out.append(Segment("bubble", z0, length, rng.uniform(25, 120), rng.uniform(0, 360), rng.normal(0, 20),
                               sharpness=0.3, params=dict(loss_db=(rng.uniform(6, 22),) * 2)))
        for z0, length in spans(max(1, rng.poisson(0.2 * per_cm)), 1.0, 6.0):
            out.append(Segment("sheath", z0, length, rng.uniform(40, 200), rng.uniform(0, 360), rng.normal(0, 30),
                               sharpness=0.5, params=dict(echo_db=(rng.uniform(4, 14),) * 2)))
    if config.perivascular:
        for z0, length in spans(max(1, rng.poisson(0.3 * per_cm)), 5.0, 30.0):
            out.append(Segment("vein", z0, length, 60.0, rng.uniform(0, 360), rng.normal(0, 50), sharpness=0.2,
                               params=dict(radius_mm=(rng.uniform(0.35, 0.9), rng.uniform(0.35, 0.9)),
                                           gap_mm=(rng.uniform(0.1, 0.8),) * 2, echo_db=(rng.uniform(-26, -14),) * 2)))
        for z0, length in spans(max(1, rng.poisson(0.2 * per_cm)), 8.0, 40.0):
            out.append(Segment("pericardium", z0, length, rng.uniform(60, 170), rng.uniform(0, 360),
                               rng.normal(0, 40), sharpness=0.3,
                               params=dict(gap_mm=(rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.5)),
                                           thickness_mm=(rng.uniform(0.15, 0.4),) * 2,
                                           echo_db=(rng.uniform(6, 12),) * 2)))
    return out
