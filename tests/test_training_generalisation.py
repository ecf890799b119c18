"""Hard-negative sampling, leave-one-style-out presets and cohort plans for generalisation checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InputError
from engine.model.spec import InputSpec
from training.cache import CacheWriter
from training.data import frame_indices, with_hard_negatives
from training.presets import PRESETS, CohortPlan, held_out_style

SPEC = InputSpec(n_alines=16, n_depth=8)


def test_hard_negative_frames_are_drawn_again(tmp_path) -> None:
    writer = CacheWriter(tmp_path / "c", SPEC)
    hard = np.zeros(100, bool)
    hard[10:20] = True
    writer.begin("a", "p0", 100)
    writer.end(np.zeros((100, 8, 16), np.uint8), np.zeros((100, 16), bool), hard)
    writer.begin("b", "p1", 50)
    writer.end(np.zeros((50, 8, 16), np.uint8), np.zeros((50, 16), bool))  # nothing recorded
    cache = writer.close()
    assert cache.hard_frames(1) is None and cache.hard_frames(0).sum() == 10
    rows = frame_indices(cache, [0, 1])
    out = with_hard_negatives(cache, rows, 0.3, np.random.default_rng(0))
    extra = out[len(rows):]
    assert len(extra) == 45 and np.all(extra[:, 0] == 0) and np.all((extra[:, 1] >= 10) & (extra[:, 1] < 20))
    assert with_hard_negatives(cache, rows, 0.0, np.random.default_rng(0)) is rows


def test_held_out_style_trains_without_it_and_tests_on_it_alone() -> None:
    preset = held_out_style(PRESETS["small"], "phased20")
    assert "phased20" not in preset.train_cohort.devices and preset.test_cohort.devices == ("phased20",)
    stress = held_out_style(PRESETS["small"], "stress")
    assert stress.train_cohort.appearance == "standard" and stress.test_cohort.appearance == "stress"
    with pytest.raises(InputError, match="unknown style"):
        held_out_style(PRESETS["small"], "rotational99")
    with pytest.raises(InputError, match="simulator"):
        held_out_style(PRESETS["tiny"], "phased20")


def test_cohort_plan_survives_its_json_round_trip() -> None:
    plan = CohortPlan("simulator", 2, 3, devices=("rotational40",), appearance="stress")
    assert json.loads(json.dumps(plan.to_dict())) == plan.to_dict()


def test_default_preset_samples_hard_negatives_and_augments() -> None:
    default = PRESETS["default"]
    assert default.train.hard_negative_share > 0 and default.train.augment


def test_generalise_command_trains_without_the_style_and_tests_on_it(tmp_path, monkeypatch) -> None:
    from dataclasses import replace

    from engine.cli import main
    from engine.model.weights import load_ensemble
    from training import presets

    tiny = presets.PRESETS["tiny"]
    sim = replace(tiny, name="simtiny", n_folds=2,
                  train_cohort=CohortPlan("simulator", 2, seed=5, n_frames=6),
                  test_cohort=CohortPlan("simulator", 1, seed=6, n_frames=6))
    monkeypatch.setitem(presets.PRESETS, "simtiny", sim)
    work = tmp_path / "w"
    args = ["--preset", "simtiny", "--work-dir", str(work), "--quiet"]
    assert main(["generalise", "--hold-out", "phased20", *args]) == 0
    card = load_ensemble(work / "ensemble.safetensors").card
    manifests = [json.loads((work / part / "cohort/cohort.json").read_text()) for part in ("train", "test")]
    train_devices, test_devices = ({run["settings"]["device"] for patient in manifest["patients"]
                                    for run in patient["pullbacks"]} for manifest in manifests)
    assert "phased20" not in train_devices and test_devices == {"phased20"}
    assert card["training"]["preset"]["name"] == "simtiny-without-phased20"
    assert card["training"]["preset"]["train"]["augmentation"] == "default"
    assert main(["generalise", "--hold-out", "nope", *args]) == 2
