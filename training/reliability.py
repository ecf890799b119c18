"""Calibrate and measure the reliability flag (engine/reliability.py) on simulator cohorts.

Calibration: the per-frame mean spread of the ensemble on an in-distribution cohort; the
threshold is its 99th percentile (about 1 % false alarms there by construction). Measurement
(`flag_figures`, used by `ivuscal evaluate`): a frame is *wrongly called* when more than
`WRONG_SHARE` of its A-lines disagree with the truth after the filter; the flag should catch
many wrongly called frames on a stress cohort and raise few alarms on in-distribution frames.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from engine.errors import InputError
from engine.filter import filter_map
from engine.reliability import Reliability

WRONG_SHARE = 0.10  # a frame with > 10 % of its A-lines (36 deg) wrong after the filter is wrongly called


def member_spread(probs: dict[str, np.ndarray]) -> np.ndarray:
    """(frames, A) population standard deviation of the members' ("model<i>") probabilities."""
    members = np.stack([p for name, p in probs.items() if name.startswith("model")])
    return members.std(axis=0)


def wrong_frames(prob: np.ndarray, truth: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """bool (frames,): more than WRONG_SHARE of the frame's A-lines wrong after the filter."""
    called = np.asarray(filter_map(np.asarray(prob, np.float32), *window))
    return (called != truth).mean(axis=1) > WRONG_SHARE


def flag_figures(rows: list[tuple[str, np.ndarray, np.ndarray]], reliability: Reliability) -> dict:
    """Flag performance over `(pullback, spread (frames, A), wrong (frames,))` rows.

    Returns the shares of wrongly and rightly called frames that are flagged (catch rate and
    false-alarm rate), and per pullback its flagged share and flag.
    """
    flagged_wrong = n_wrong = flagged_right = n_right = 0
    per_pullback = []
    for name, spread, wrong in rows:
        flags = reliability.frame_flags(spread)
        flagged_wrong += int((flags & wrong).sum())
        n_wrong += int(wrong.sum())
        flagged_right += int((flags & ~wrong).sum())
        n_right += int((~wrong).sum())
        summary = reliability.pullback_summary(spread)
        per_pullback.append({"pullback": name, "wrong_frames": int(wrong.sum()), "n_frames": len(wrong),
                             "flagged_share": summary["flagged_share"],
                             "pullback_flagged": summary["pullback_flagged"]})
    return {
        "frame_threshold": reliability.frame_threshold,
        "wrong_frame_definition": f"> {100 * WRONG_SHARE:.0f} % of A-lines wrong after the filter",
        "wrong_frames": n_wrong,
        "wrong_frames_flagged": flagged_wrong / n_wrong if n_wrong else float("nan"),
        "right_frames": n_right,
        "right_frames_flagged": flagged_right / n_right if n_right else float("nan"),
        "pullbacks_flagged": sum(p["pullback_flagged"] for p in per_pullback),
        "per_pullback": per_pullback,
    }


def format_flag_figures(figures: dict) -> str:
    caught, alarms = (100 * np.nan_to_num(figures[k]) for k in ("wrong_frames_flagged", "right_frames_flagged"))
    return (f"reliability flag (frame mean spread > {figures['frame_threshold']:.4f}): flags "
            f"{caught:.1f}% of {figures['wrong_frames']} wrongly called frames, "
            f"{alarms:.1f}% of {figures['right_frames']} rightly called; "
            f"{figures['pullbacks_flagged']} of {len(figures['per_pullback'])} pullbacks flagged")


@click.command("calibrate-reliability")
@click.option("--cohort", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="An in-distribution simulator cohort (not the test cohort).")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="Ensemble weights. [default: the shipped model]")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Polar cache to build or reuse.")
@click.option("--quantile", type=float, default=0.99, show_default=True, help="Quantile of the frames' mean spread.")
@click.option("--pullback-share", type=float, default=0.5, show_default=True,
              help="A pullback is flagged when more than this share of its frames is.")
@click.option("--write/--dry-run", default=False, show_default=True,
              help="Write <model>.reliability.json beside the weights (else print only).")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--quiet", is_flag=True)
def calibrate_command(cohort: Path, model_path: Path | None, cache_dir: Path | None, quantile: float,
                      pullback_share: float, write: bool, threads: int, quiet: bool) -> None:
    """Calibrate the per-frame / per-pullback reliability flag on in-distribution data."""
    import json

    import torch

    from engine.model.weights import DEFAULT_WEIGHTS, load_ensemble
    from engine.reliability import calibrate, write_reliability
    from training.cohort import cache_cohort_dir
    from training.evaluate import member_predictions

    if not 0.0 < pullback_share < 1.0:
        raise InputError(f"--pullback-share must be in (0, 1), got {pullback_share}", source="calibrate-reliability")
    torch.set_num_threads(threads)
    ensemble = load_ensemble(model_path)
    cache = cache_cohort_dir(cohort, cache_dir or Path("runs") / "eval-cache" / cohort.name, ensemble.spec, quiet)
    statistic = []
    with torch.inference_mode():
        for _, probs in member_predictions(ensemble.models, cache):
            statistic.append(member_spread(probs).mean(axis=1))
    reliability = calibrate(np.concatenate(statistic), quantile, pullback_share, cohort=cohort.name,
                            n_pullbacks=len(cache), weights_sha256=ensemble.sha256, model_id=ensemble.model_id)
    click.echo(json.dumps(reliability.to_dict(), indent=1))
    if write:
        click.echo(f"wrote {write_reliability(ensemble.path or DEFAULT_WEIGHTS, reliability)}")
