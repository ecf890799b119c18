"""Hard negatives and appearance range of the simulator: bright plaque without a shadow, calcium
plates with visible tissue between them, stent struts, per-cell confounder labels in the truth
files, console settings inside / outside the training ranges, lesion morphology classes."""

from __future__ import annotations

import numpy as np
import pytest

from tools.simulator import LesionSpec, PullbackConfig, iter_pullback, load_truth, write_pullback
from tools.simulator.appearance import RANGES, sample_appearance
from tools.simulator.lesions import CALCIUM_PATTERNS, Segment, draw_pattern, random_calcium

QUIET = dict(guidewire=False, stent=False, side_branches=False, attenuated_plaque=False, dense_fibrous=False,
             catheter_artefacts=False, perivascular=False, annotations=False, cardiac_motion=False, nurd=False)


def _depth_mm(stream) -> np.ndarray:
    return (np.arange(stream.n_depth) + 0.5) * stream.calibration.pixel_spacing_mm[0]


def _middle_frame(stream, kind: str) -> int:
    segment = next(s for s in stream.scene.confounders if s.kind == kind)
    z = segment.z0 + segment.length / 2
    return int(np.clip(z / stream.config.frame_step_mm, 0, stream.config.n_frames - 1))


def test_dense_fibrous_plaque_is_bright_without_a_shadow_and_labelled_per_cell():
    config = PullbackConfig(n_frames=200, calcium_fraction=0.0, **{**QUIET, "dense_fibrous": True})
    stream = iter_pullback(config, seed=5)
    frame = _middle_frame(stream, "fibrous")
    cells = stream.truth.confounder_mask("fibrous", stream.config.style.n_alines)[frame]
    assert cells.any() and not stream.truth.labels(360).any()
    polar = stream.polar(np.array([frame]))[0].astype(float)
    rays = stream.scene.rays(np.array([frame]), stream.renderer.theta_d)
    depth = _depth_mm(stream)
    lumen = rays.borders.lumen[0]
    inside, outside = cells, ~cells
    plaque = (depth[None, :] > lumen[:, None] + 0.05) & (depth[None, :] < lumen[:, None] + 0.4)
    assert polar[inside][plaque[inside]].mean() > polar[outside][plaque[outside]].mean()  # brighter plaque
    deep = (depth > np.median(rays.borders.vessel[0]) + 0.2) & (depth < np.median(rays.borders.vessel[0]) + 0.8)
    # tissue behind it stays visible: no shadow (calcium's shadow is < 0.35 of the wall, test_simulator_physics)
    assert polar[np.ix_(inside, deep)].mean() > 0.6 * polar[np.ix_(outside, deep)].mean()


def test_calcium_plates_leave_visible_tissue_between_them():
    segment = Segment("calcium", 0.0, 4.0, 240.0, 90.0, gaps=((0.5, 40.0),))
    plates = segment.plates_at(2.0)
    assert len(plates) == 2
    assert sum(extent for _, extent in plates) == pytest.approx(segment.arc_at(2.0)[1] - 40.0)


def test_multi_plate_lesion_labels_interplate_cells_and_no_calcium_there():
    config = PullbackConfig(n_frames=120, lesions=(LesionSpec(0.0, 2.0, 220.0, centre_deg=90.0),), **QUIET)
    stream = iter_pullback(config, seed=1)
    stream.scene.calcium[0].gaps = ((0.5, 40.0),)  # split the deposit into two plates
    frame = 60
    rays = stream.scene.rays(np.array([frame]), np.arange(360) + 0.5)
    gap = rays.cells["interplate"][0]
    assert 25 <= gap.sum() <= 45
    assert not (gap & rays.calcium[0]).any()
    # behind the gap the wall is imaged: brighter than behind the plates at the same depth
    polar = stream.polar(np.array([frame]))[0].astype(float)
    render = stream.scene.rays(np.array([frame]), stream.renderer.theta_d)
    depth = _depth_mm(stream)
    edge = np.median(render.reflectors[0].position[0][render.calcium[0]])
    band = (depth > edge + 0.3) & (depth < edge + 1.0)
    between = polar[np.ix_(render.cells["interplate"][0], band)].mean()
    assert between > 2.0 * polar[np.ix_(render.calcium[0], band)].mean()


def test_stent_struts_count_and_narrow_shadows():
    config = PullbackConfig(n_frames=300, calcium_fraction=0.0, **{**QUIET, "stent": True})
    stream = iter_pullback(config, seed=8)
    stent = next(s for s in stream.scene.confounders if s.kind == "stent")
    assert 6 <= stent.param("n_struts", 0.0) <= 20
    frame = _middle_frame(stream, "stent")
    struts = stream.truth.confounder_mask("stent", 360)[frame]
    assert struts.any()
    # a strut's footprint (echo and shadow, blurred by the beam) is a few degrees wide, not a sector
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, struts.astype(int), 0])))[::2]
    assert np.median(runs) <= 15 and runs.max() <= 30


def test_confounder_cells_survive_the_truth_file(tmp_path):
    config = PullbackConfig(n_frames=40, image_size=128, calcium_fraction=0.5, stent=True)
    stream = iter_pullback(config, seed=2)
    write_pullback(tmp_path / "run.dcm", stream)
    loaded = load_truth(tmp_path / "run.dcm")
    assert set(loaded.confounder_cells) == set(stream.truth.confounder_cells)
    for kind, cells in stream.truth.confounder_cells.items():
        np.testing.assert_array_equal(loaded.confounder_cells[kind], cells)
        assert not (cells & loaded.labels(360)).any()  # a confounder cell is never calcium
    assert loaded.confounder_mask("stent", 512).shape == (40, 512)


def test_stress_appearance_lies_outside_the_standard_ranges():
    rng = np.random.default_rng(0)
    standard = RANGES["standard"]
    for _ in range(50):
        stress = sample_appearance(rng, "stress")
        for name in ("gain_db", "dynamic_range_db", "tgc_fraction", "gamma", "noise_db", "ringdown_scale"):
            (lo, hi), = getattr(standard, name)
            assert not lo <= getattr(stress, name) <= hi, name
    psf = [PullbackConfig.random(rng, n_frames=10, appearance="stress").psf_scale for _ in range(20)]
    assert all(not 0.8 <= p <= 1.25 for p in psf)


def test_morphology_classes_follow_their_definitions():
    rng = np.random.default_rng(1)
    for _ in range(300):
        pattern = draw_pattern(rng)
        lesion = random_calcium(rng, 0.0, pattern)
        assert pattern.length_mm[0] <= lesion.length <= pattern.length_mm[1]
        assert pattern.arc_deg[0] <= lesion.max_arc <= pattern.arc_deg[1]
        if pattern.name == "spotty":  # Kataoka 2012: < 90 deg and < 4 mm
            assert lesion.max_arc < 90 and lesion.length < 4 and not lesion.gaps
    assert sum(p.share for p in CALCIUM_PATTERNS) == pytest.approx(1.0)


def test_leave_one_style_out_cohorts_draw_only_the_allowed_devices():
    rng = np.random.default_rng(4)
    allowed = ("rotational40", "rotational60")
    devices = {PullbackConfig.random(rng, n_frames=10, devices=allowed).device for _ in range(40)}
    assert devices == {"rotational40", "rotational60"}
