"""False calcium calls where the simulator placed a confounder (guidewire, attenuation, stent...).

Uses the simulator's `<case>.lesions.json` beside each DICOM: each confounder has a kind and a
frame range. For every kind, over the frames it appears in, the table gives the A-lines called
calcified although the truth says not (false positives, in degrees per frame) and the
specificity there, after the filter. A kind the network confuses with calcium stands out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.filter import filter_map
from engine.metrics import Confusion
from training.cache import PolarCache


def confounder_table(cache: PolarCache, cohort_dir: Path, maps: dict[int, np.ndarray], window: tuple[int, int]) -> dict:
    """{kind: {"frames", "false_positive_deg_per_frame", "specificity"}} over the pullbacks in `maps`."""
    totals: dict[str, Confusion] = {}
    for index, prob in maps.items():
        lesions_file = (cohort_dir / cache.pullbacks[index].source).with_suffix(".lesions.json")
        if not lesions_file.is_file():
            continue
        called = np.asarray(filter_map(np.asarray(prob, np.float32), window[0], window[1]))
        truth = cache.labels(index)
        for item in json.loads(lesions_file.read_text()).get("confounders", []):
            frames = slice(int(item["start_frame"]), int(item["end_frame"]) + 1)
            totals.setdefault(item["kind"], Confusion())
            totals[item["kind"]] += Confusion.of(called[frames], truth[frames])
    n_alines = cache.spec.n_alines
    return {
        kind: {
            "frames": c.n_frames,
            "false_positive_deg_per_frame": c.fp * 360.0 / n_alines / max(c.n_frames, 1),
            "specificity": c.metrics()["specificity"],
        }
        for kind, c in sorted(totals.items())
    }
