"""Derive the truth of a `Scene`: calcium arcs mapped into displayed angles, borders, lesions,
and optional label noise that mimics a weak expert (boundary jitter, missed thin arcs).
"""

from __future__ import annotations

import numpy as np

from tools.simulator import circular
from tools.simulator.circular import Arc
from tools.simulator.scene import CELL_KINDS, Scene
from tools.simulator.truth import Lesion, PullbackTruth

_GRID = np.linspace(0.0, 360.0, 721)  # display angles at which the warp is tabulated
_CENTRES_360 = (np.arange(360) + 0.5)


def display_angle_map(scene: Scene, frame: int):
    """A function mapping tissue angles to displayed angles for one frame (inverse warp)."""
    tissue = scene.motion.frames(np.array([frame])).tissue_angles(_GRID)[0]  # increasing
    s0 = tissue[0]

    def to_display(angles: np.ndarray) -> np.ndarray:
        q = s0 + (np.asarray(angles, dtype=np.float64) - s0) % 360.0
        return np.interp(q, tissue, _GRID) % 360.0

    return to_display


def _display_arcs(scene: Scene, frame: int) -> list[tuple[float, float, int]]:
    tissue_arcs = scene.tissue_arcs(frame)
    if not tissue_arcs:
        return []
    to_display = display_angle_map(scene, frame)
    out = []
    for start, extent, index in tissue_arcs:
        if extent >= 360.0:
            out.append((0.0, 360.0, index))
            continue
        a, b = to_display(np.array([start, start + extent]))
        out.append((float(a), float((b - a) % 360.0) or 360.0, index))
    return out


def _noisy(per_frame: list[list[tuple[float, float, int]]], n_lesions: int,
           rng: np.random.Generator) -> list[list[Arc]]:
    """Weak-expert labels: ends jittered by a few degrees (correlated over frames), some thin
    lesions missed entirely and thin arcs missed now and then."""
    n = len(per_frame)
    smooth = np.cumsum(rng.normal(0, 0.6, (n, n_lesions, 2)), axis=0)
    smooth -= np.linspace(0, 1, n)[:, None, None] * smooth[-1:]  # keep it bounded
    jitter = np.clip(smooth, -5, 5) + rng.normal(0, 1.0, (n, n_lesions, 2))
    missed_lesion = rng.random(n_lesions) < 0.15
    out: list[list[Arc]] = []
    for i, arcs in enumerate(per_frame):
        frame: list[Arc] = []
        for start, extent, index in arcs:
            thin = extent < 30.0
            if thin and (missed_lesion[index] or rng.random() < 0.05):
                continue
            if extent >= 360.0:
                frame.append((start, extent))
                continue
            lo, hi = jitter[i, index]
            new_extent = min(extent - lo + hi, 360.0)
            if new_extent > 1.0:
                frame.append(((start + lo) % 360.0, new_extent))
        out.append(circular.union(frame))
    return out


def _lesion_list(scene: Scene, per_frame, max_arc: np.ndarray) -> list[Lesion]:
    cfg = scene.config
    step = cfg.frame_step_mm
    lesions = []
    for index, seg in enumerate(scene.calcium):
        frames = [i for i, arcs in enumerate(per_frame) if any(k == index for *_, k in arcs)]
        if not frames:
            continue
        lesions.append(Lesion(
            index=index, start_frame=frames[0], end_frame=frames[-1],
            start_mm=round(frames[0] * step, 4), end_mm=round(frames[-1] * step, 4),
            max_arc_deg=round(float(max_arc[index]), 2),
            depth="superficial" if max(seg.params["depth"]) < 0.1 or seg.params["nodule"][0] else "deep",
            nodule=bool(seg.params["nodule"][0]), reverberation=bool(seg.params["reverberation"][0]),
        ))
    return lesions


def _confounder_list(scene: Scene) -> list[dict]:
    step = scene.config.frame_step_mm
    out = []
    if scene.config.guidewire:
        out.append({"kind": "guidewire", "start_frame": 0, "end_frame": scene.config.n_frames - 1})
    for seg in scene.confounders:
        start = max(int(np.ceil(seg.z0 / step)), 0)
        end = min(int((seg.z0 + seg.length) / step), scene.config.n_frames - 1)
        if end >= start:
            out.append({"kind": seg.kind, "start_frame": start, "end_frame": end, "max_arc_deg": round(seg.max_arc, 1)})
    return out


def build_truth(scene: Scene, noise_rng: np.random.Generator | None = None, chunk: int = 256) -> PullbackTruth:
    """Truth of the whole pullback; label noise when `noise_rng` is given."""
    cfg = scene.config
    n = cfg.n_frames
    per_frame = [_display_arcs(scene, i) for i in range(n)]
    exact = [circular.union([(s, e) for s, e, _ in arcs]) for arcs in per_frame]
    max_arc = np.zeros(len(scene.calcium))
    for arcs in per_frame:
        for index in {k for *_, k in arcs}:
            max_arc[index] = max(max_arc[index],
                                 circular.total_extent([(s, e) for s, e, k in arcs if k == index]))
    lumen = np.empty((n, 360), dtype=np.float32)
    vessel = np.empty((n, 360), dtype=np.float32)
    cells = {kind: np.zeros((n, 360), dtype=bool) for kind in CELL_KINDS}
    for start in range(0, n, chunk):
        idx = np.arange(start, min(start + chunk, n))
        rays = scene.rays(idx, _CENTRES_360)
        lumen[idx], vessel[idx] = rays.lumen_truth, rays.vessel_truth
        for kind, mask in rays.cells.items():
            cells[kind][idx] = mask
    truth = PullbackTruth(exact, lumen, vessel, cfg.frame_time_s, cfg.pullback_rate_mm_s,
                          lesions=_lesion_list(scene, per_frame, max_arc), confounders=_confounder_list(scene),
                          confounder_cells={kind: mask for kind, mask in cells.items() if mask.any()})
    if noise_rng is not None:
        truth.exact_arcs = exact
        truth.arcs = _noisy(per_frame, max(len(scene.calcium), 1), noise_rng)
    return truth
