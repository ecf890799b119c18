"""Physical properties of simulated frames: shadows, bright calcium edges, guidewire shadow width,
labels aligned with the image, speckle that persists in tissue and not in blood, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from engine.geometry import PolarSampler
from engine.model.spec import InputSpec
from tools.simulator import LesionSpec, PullbackConfig, iter_pullback, simulate_pullback
from tools.simulator.lesions import CONFOUNDER_KINDS
from tools.simulator.scene import WIRE_RADIUS_MM

QUIET = dict(guidewire=False, stent=False, side_branches=False, attenuated_plaque=False, dense_fibrous=False,
             catheter_artefacts=False, perivascular=False, annotations=False)
STILL = dict(cardiac_motion=False, nurd=False)


def _depth_mm(stream) -> np.ndarray:
    return (np.arange(stream.n_depth) + 0.5) * stream.calibration.pixel_spacing_mm[0]


@pytest.mark.parametrize("device", ["rotational40", "rotational60", "phased20"])
def test_shadow_behind_calcium_is_far_darker_than_wall_at_same_depth(device):
    spec = LesionSpec(0.0, 2.0, 100.0, centre_deg=60.0, depth_fraction=0.0)
    stream = iter_pullback(PullbackConfig(n_frames=60, device=device, lesions=(spec,), **QUIET, **STILL), seed=4)
    frame = 30
    polar = stream.polar(np.array([frame]))[0].astype(float)  # (A, D)
    rays = stream.scene.rays(np.array([frame]), stream.renderer.theta_d)
    calcified = rays.calcium[0]
    edge = rays.reflectors[0].position[0]
    depth = _depth_mm(stream)
    core = calcified & (np.abs((stream.renderer.theta_d - 60.0 + 180) % 360 - 180) < 35)
    clear = ~calcified & (np.abs((stream.renderer.theta_d - 240.0 + 180) % 360 - 180) < 60)
    band = (depth > np.median(edge[core]) + 0.3) & (depth < np.median(edge[core]) + 1.2)
    shadow = polar[np.ix_(core, band)].mean()
    wall = polar[np.ix_(clear, band)].mean()
    assert shadow < 0.35 * wall, (shadow, wall)
    # the leading edge is bright: brighter than the wall's 90th percentile at that depth
    peaks = [polar[k, np.argmin(np.abs(depth - edge[k]))] for k in np.flatnonzero(core)]
    assert np.median(peaks) > np.percentile(polar[np.ix_(clear, band)], 90)


def test_attenuated_plaque_shadows_without_a_bright_edge_and_is_not_calcium():
    config = PullbackConfig(n_frames=400, calcium_fraction=0.0, **{**QUIET, "attenuated_plaque": True}, **STILL)
    stream = iter_pullback(config, seed=2)
    assert not stream.truth.labels(360).any()
    segment = next(s for s in stream.scene.confounders if s.kind == "attenuated")
    frame = int(np.clip((segment.z0 + segment.length / 2) / config.frame_step_mm, 0, config.n_frames - 1))
    rays = stream.scene.rays(np.array([frame]), stream.renderer.theta_d)
    inside = rays.plaque_att_db_mm[0] > 0.9 * rays.plaque_att_db_mm[0].max()
    outside = rays.plaque_att_db_mm[0] == 0
    polar = stream.polar(np.array([frame]))[0].astype(float)
    depth = _depth_mm(stream)
    lumen = np.median(rays.borders.lumen[0, inside])
    deep = (depth > lumen + 1.0) & (depth < lumen + 2.0)
    assert polar[np.ix_(inside, deep)].mean() < 0.6 * polar[np.ix_(outside, deep)].mean()


@pytest.mark.parametrize("device", ["rotational40", "phased20"])
def test_guidewire_shadow_width_matches_wire_geometry(device):
    config = PullbackConfig(n_frames=30, device=device, calcium_fraction=0.0, **{**QUIET, "guidewire": True}, **STILL)
    stream = iter_pullback(config, seed=11)
    frame = 15
    angle, distance = stream.scene.guidewire_at(frame)
    polar = stream.polar(np.array([frame]))[0].astype(float)
    lumen = stream.scene.rays(np.array([frame]), stream.renderer.theta_d).borders.lumen[0][:, None]
    depth = _depth_mm(stream)[None, :]
    band = (depth > lumen + 0.1) & (depth < lumen + 0.8)  # wall tissue behind the wire's level
    profile = (polar * band).sum(axis=1) / band.sum(axis=1)
    dark = profile < 0.3 * np.median(profile)
    offsets = (stream.renderer.theta_d - angle + 180.0) % 360.0 - 180.0
    assert np.abs(offsets[dark]).max() < 30.0  # the only shadow is the wire's
    measured = dark.sum() * 360.0 / stream.renderer.n_alines
    # the wire's angular size 2 asin(R / d), widened or narrowed by up to one beam width each side
    beam = config.style.lateral_beam_mm
    narrow, wide = (2 * np.rad2deg(np.arcsin((WIRE_RADIUS_MM + s) / distance)) for s in (-beam, beam))
    assert narrow < measured < wide, (narrow, measured, wide)


def test_labels_line_up_with_calcium_in_the_displayed_image():
    """Sample the Cartesian frames back to polar with the engine's own sampler: A-lines labelled
    calcium are dark behind the calcium, with cardiac rotation and NURD on."""
    spec = LesionSpec(0.0, 3.0, 120.0, centre_deg=300.0, depth_fraction=0.0)
    config = PullbackConfig(n_frames=40, lesions=(spec,), **{**QUIET, "annotations": True},
                            cardiac_motion=True, nurd=True)
    sim = simulate_pullback(config, seed=5)
    cal = sim.calibration
    sampler = PolarSampler((config.image_size,) * 2, cal.centre_rc, cal.pixel_spacing_mm, InputSpec())
    polar = sampler(sim.frames[10:30])  # (B, depth, 360)
    labels = sim.truth.labels(360)[10:30]
    lumen = sim.truth.lumen_radius_mm[10:30]
    depth = (np.arange(128) + 0.5) * 0.04
    behind = (depth[None, :, None] > lumen[:, None, :] + 0.6) & (depth[None, :, None] < lumen[:, None, :] + 2.0)
    calc = behind & labels[:, None, :]
    clear = behind & ~labels[:, None, :]
    assert labels.any(axis=1).all()
    assert polar[calc].mean() < 0.4 * polar[clear].mean()
    # and the truth moved with the heartbeat: arc centres differ between frames
    starts = [arcs[0][0] for arcs in sim.truth.arcs[10:30]]
    assert np.ptp(starts) > 1.0


def test_blood_speckle_decorrelates_while_tissue_speckle_persists():
    config = PullbackConfig(n_frames=20, calcium_fraction=0.0, **QUIET, **STILL)
    stream = iter_pullback(config, seed=8)
    a, b = (p.astype(float) for p in stream.polar(np.array([10, 11])))
    rays = stream.scene.rays(np.array([10]), stream.renderer.theta_d)
    depth = _depth_mm(stream)
    lumen, vessel = rays.borders.lumen[0][:, None], rays.borders.vessel[0][:, None]
    rc = config.style.catheter_radius_mm
    visible = (a > 5) & (b > 5)  # above the black clip level in both frames
    blood = (depth[None, :] > rc + 0.35) & (depth[None, :] < lumen - 0.1) & visible  # beyond the ring-down
    plaque = (depth[None, :] > lumen + 0.1) & (depth[None, :] < vessel - 0.3) & visible
    assert blood.sum() > 2000 and plaque.sum() > 2000
    assert np.corrcoef(a[blood], b[blood])[0, 1] < 0.3
    assert np.corrcoef(a[plaque], b[plaque])[0, 1] > 0.6


def test_speckle_is_correlated_along_and_across_alines():
    """Speckle from a PSF: neighbouring samples correlate, unlike white noise."""
    config = PullbackConfig(n_frames=4, calcium_fraction=0.0, **QUIET, **STILL)
    stream = iter_pullback(config, seed=3)
    polar = stream.polar(np.array([2]))[0].astype(float)
    rays = stream.scene.rays(np.array([2]), stream.renderer.theta_d)
    k = np.flatnonzero(rays.borders.vessel[0] - rays.borders.lumen[0] > 0.8)[:60]
    j0 = int(np.ceil((rays.borders.lumen[0, k].max() + 0.1) / stream.calibration.pixel_spacing_mm[0]))
    patch = polar[k][:, j0:j0 + 20]
    along = np.corrcoef(patch[:, :-1].ravel(), patch[:, 1:].ravel())[0, 1]
    across = np.corrcoef(patch[:-1].ravel(), patch[1:].ravel())[0, 1]
    assert along > 0.3 and across > 0.3


def test_same_seed_same_pullback_other_seed_other_pullback():
    config = PullbackConfig(n_frames=6, image_size=256, stent=True)
    a, b, c = simulate_pullback(config, 21), simulate_pullback(config, 21), simulate_pullback(config, 22)
    assert np.array_equal(a.frames, b.frames) and a.truth.arcs == b.truth.arcs
    assert not np.array_equal(a.frames, c.frames)


def test_chunks_are_independent_of_chunk_size_and_rgb_is_colour():
    config = PullbackConfig(n_frames=10, image_size=256, color="rgb")
    whole = simulate_pullback(config, 3).frames
    chunks = list(iter_pullback(config, 3, chunk_frames=4))
    assert [start for start, _ in chunks] == [0, 4, 8]
    assert np.array_equal(np.concatenate([c for _, c in chunks]), whole)
    assert whole.shape == (10, 256, 256, 3) and whole.dtype == np.uint8
    coloured = ((whole[..., 0] != whole[..., 1]) | (whole[..., 1] != whole[..., 2])).any(axis=0)
    assert coloured.sum() > 50  # burnt-in coloured annotations
    assert (~coloured).mean() > 0.95  # the image itself is grey


def test_confounders_make_shadows_and_bright_spots_but_no_labels():
    everything = dict(guidewire=True, stent=True, side_branches=True, attenuated_plaque=True, dense_fibrous=True,
                      catheter_artefacts=True, perivascular=True)
    config = PullbackConfig(n_frames=600, image_size=256, calcium_fraction=0.0, fov_mm=11.0, **everything)
    stream = iter_pullback(config, seed=6)
    assert not stream.truth.labels(360).any() and not stream.truth.lesions
    kinds = {c["kind"] for c in stream.truth.confounders}
    assert kinds == {"guidewire", *CONFOUNDER_KINDS}
    frames = stream.render(np.arange(0, 600, 50))
    assert frames.max() == 255  # bright reflectors (wire, struts) without any calcium
    assert stream.calibration.pixel_spacing_mm == (11.0 / 256, 11.0 / 256)
