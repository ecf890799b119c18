"""Know when the model does not know: a per-frame and per-pullback reliability flag.

The ensemble's members agree on images like those they were trained on and disagree on images
unlike them. A frame is *flagged* when the mean over its A-lines of the members' spread (the
population standard deviation of their probabilities, `FusedEnsemble`) exceeds a threshold
calibrated on in-distribution data (`ivuscal calibrate-reliability`); a pullback is flagged when
more than `pullback_share` of its frames are. The calibration lives beside the weights as
`<stem>.reliability.json`; without it nothing is flagged and the fields are null.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError

STATISTIC = "mean_spread"  # mean over A-lines of the ensemble spread, per frame


@dataclass(frozen=True)
class Reliability:
    """A calibrated flag: frame threshold on the mean spread, pullback share, provenance."""

    frame_threshold: float
    pullback_share: float = 0.5
    statistic: str = STATISTIC
    calibration: dict[str, Any] = field(default_factory=dict)  # data, quantile, false-alarm rate, model hash

    def frame_statistic(self, spread: np.ndarray) -> np.ndarray:
        """(frames,) mean spread of (frames, A) spread rows (or a scalar for one (A,) row)."""
        return np.asarray(spread, dtype=np.float32).mean(axis=-1)

    def frame_flags(self, spread: np.ndarray) -> np.ndarray:
        """bool (frames,) (or a bool for one row): True where the frame is flagged unreliable."""
        return self.frame_statistic(spread) > self.frame_threshold

    def pullback_summary(self, spread: np.ndarray) -> dict[str, Any]:
        """Flagged frames of a pullback's (frames, A) spread rows and whether the pullback is flagged."""
        flags = self.frame_flags(spread)
        share = float(flags.mean()) if flags.size else 0.0
        return {
            "frame_threshold": self.frame_threshold,
            "flagged_frames": int(flags.sum()),
            "flagged_share": share,
            "pullback_flagged": share > self.pullback_share,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_flag(reliability: Reliability | None, spread_row: np.ndarray) -> bool | None:
    """One frame's flag from its (A,) spread row; None when the model has no calibration."""
    return None if reliability is None else bool(reliability.frame_flags(spread_row))


def report_section(spread: np.ndarray, calibration: dict[str, Any] | None) -> dict[str, Any]:
    """summary.json `reliability` for a pullback's (frames, A) spread rows; `notice` is the report's
    top line when most frames are flagged (None otherwise, and all null without a calibration)."""
    if not calibration:
        return {"frame_threshold": None, "flagged_frames": None, "flagged_share": None,
                "pullback_flagged": None, "notice": None}
    reliability = Reliability(float(calibration["frame_threshold"]), float(calibration.get("pullback_share", 0.5)))
    section = reliability.pullback_summary(spread)
    section["notice"] = (
        f"UNRELIABLE: the ensemble disagrees on {100 * section['flagged_share']:.0f}% of frames (mean spread above "
        f"{reliability.frame_threshold:.3f}); these images are unlike the model's training data - do not rely on "
        "the calcium figures" if section["pullback_flagged"] else None)
    return section


def reliability_path(weights_path: Path) -> Path:
    """`<stem>.reliability.json` beside `<stem>.safetensors`."""
    return weights_path.with_name(weights_path.name.removesuffix(".safetensors") + ".reliability.json")


def load_reliability(weights_path: Path, weights_sha256: str | None = None) -> Reliability | None:
    """The calibration beside `weights_path`, None when there is none; InputError when it does not fit."""
    path = reliability_path(Path(weights_path))
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        reliability = Reliability(float(data["frame_threshold"]), float(data.get("pullback_share", 0.5)),
                                  str(data.get("statistic", STATISTIC)), dict(data.get("calibration", {})))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"unreadable reliability calibration ({error})", source=str(path)) from None
    if reliability.statistic != STATISTIC:
        raise InputError(f"unknown reliability statistic {reliability.statistic!r}", source=str(path))
    model_hash = reliability.calibration.get("weights_sha256")
    if weights_sha256 and model_hash and model_hash != weights_sha256:
        raise InputError("reliability calibration was made for other weights (hash differs)", source=str(path))
    return reliability


def calibrate(frame_statistic: np.ndarray, quantile: float = 0.99, pullback_share: float = 0.5,
              **provenance: Any) -> Reliability:
    """Threshold = the `quantile` of in-distribution frames' mean spread (false alarms ~ 1 - quantile)."""
    values = np.asarray(frame_statistic, dtype=np.float64)
    if values.ndim != 1 or values.size < 10 or not np.isfinite(values).all():
        raise InputError(f"calibration needs at least 10 finite per-frame values, got shape {values.shape}")
    if not 0.5 <= quantile < 1.0:
        raise InputError(f"quantile must be in [0.5, 1), got {quantile}")
    threshold = float(np.quantile(values, quantile))
    calibration = {"quantile": quantile, "n_frames": int(values.size),
                   "false_alarm_rate": float((values > threshold).mean()), **provenance}
    return Reliability(threshold, pullback_share, STATISTIC, calibration)


def write_reliability(weights_path: Path, reliability: Reliability) -> Path:
    path = reliability_path(Path(weights_path))
    path.write_text(json.dumps(reliability.to_dict(), indent=2, sort_keys=True) + "\n")
    return path
