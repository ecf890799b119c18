"""Per-cell false-positive rates on confounders and the worst pullbacks, on a real (tiny) simulator cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.model.spec import InputSpec
from tools.simulator import load_truth
from tools.simulator.cohort import generate_cohort
from training.cohort import cache_cohort_dir
from training.confounders import confounder_table, format_confounders, worst_pullbacks
from training.evaluate import score_predictions

SPEC = InputSpec(n_alines=90, n_depth=32, depth_spacing_mm=0.15)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("cohort")
    generate_cohort(root / "c", 2, seed=3, n_frames=24, image_size=128, stent=True, guidewire=True)
    cache = cache_cohort_dir(root / "c", root / "cache", SPEC)
    return root / "c", cache


def test_calling_exactly_the_stent_cells_gives_stent_fp_rate_one_and_others_zero(cohort) -> None:
    cohort_dir, cache = cohort
    maps = {}
    for index, entry in enumerate(cache.pullbacks):
        truth = load_truth(cohort_dir / entry.source)
        maps[index] = (truth.confounder_mask("stent", SPEC.n_alines) & ~truth.labels(SPEC.n_alines)).astype(np.float32)
    table = confounder_table(cache, cohort_dir, maps, (1, 1))
    assert table["stent"]["fp_rate"]["raw"] == pytest.approx(1.0)
    assert table["stent"]["fp_rate"]["filtered"] == pytest.approx(1.0)  # a 1 x 1 window changes nothing
    assert table["stent"]["worst"]["fp_rate"] == pytest.approx(1.0)
    others = [row["fp_rate"]["raw"] for kind, row in table.items() if kind not in ("stent", "guidewire")]
    assert others and max(others) < 0.3  # other kinds count only where struts happen to overlap them
    assert table["guidewire"]["cells"] > 0


def test_worst_pullbacks_sorts_by_specificity(cohort) -> None:
    cohort_dir, cache = cohort
    rng = np.random.default_rng(0)
    items = []
    for index in range(len(cache)):
        noise = rng.random(cache.labels(index).shape) < (0.05 if index else 0.4)
        items.append((index, {"ensemble": (cache.labels(index) ^ noise).astype(np.float32)}))
    report = score_predictions(items, cache, (1, 1))
    worst = worst_pullbacks(report, cache, cohort_dir)
    assert worst[0]["pullback"] == cache.pullbacks[0].source
    assert worst[0]["specificity"] <= worst[-1]["specificity"]
    assert worst[0]["device"] is not None and worst[0]["appearance"] == "standard"
    table = confounder_table(cache, cohort_dir, {i: probs["ensemble"] for i, probs in items}, (1, 1))
    text = format_confounders(table, worst)
    assert "stent" in text and "worst pullbacks" in text
    assert all(row["pullback"] in text.split("worst pullbacks")[1] for row in worst)
