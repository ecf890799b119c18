"""Named training recipes: what data, how many folds, which hyperparameters.

`default` reproduces the shipped model (engine/model/default/) on a 2-core CPU in under an
hour; `tiny` trains on the built-in synthetic task in seconds (tests, smoke runs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from engine.errors import InputError
from engine.model.network import NetConfig
from engine.model.spec import InputSpec
from training.trainer import TrainConfig


@dataclass(frozen=True)
class CohortPlan:
    """A cohort to generate: `source` is "simulator" (DICOM via tools.simulator) or "synthetic".

    The simulator gives each patient 1 to 3 pullbacks of `n_frames` frames with every other
    setting (device, export format, confounders) sampled from the seed.
    """

    source: str
    n_patients: int
    seed: int
    n_frames: int = 360

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    """Everything that defines a training run besides the machine it runs on."""

    name: str
    train_cohort: CohortPlan
    test_cohort: CohortPlan
    train: TrainConfig = field(default_factory=TrainConfig)
    net: NetConfig = field(default_factory=NetConfig)
    spec: InputSpec = field(default_factory=InputSpec)
    n_folds: int = 5
    seed: int = 2026

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "train_cohort": self.train_cohort.to_dict(),
            "test_cohort": self.test_cohort.to_dict(),
            "train": self.train.to_dict(),
            "net": self.net.to_dict(),
            "spec": self.spec.to_dict(),
            "n_folds": self.n_folds,
            "seed": self.seed,
        }


PRESETS: dict[str, Preset] = {
    "default": Preset(
        name="default",
        train_cohort=CohortPlan("simulator", n_patients=20, seed=1001, n_frames=300),
        test_cohort=CohortPlan("simulator", n_patients=4, seed=2002, n_frames=300),
        train=TrainConfig(
            batch_size=32,
            lr=3e-3,
            max_epochs=10,
            patience=3,
            frame_stride=4,
            max_steps_per_epoch=30,
            val_frame_stride=6,
            warmup_steps=20,
            max_member_seconds=480.0,
        ),
    ),
    "tiny": Preset(
        name="tiny",
        train_cohort=CohortPlan("synthetic", n_patients=5, seed=11, n_frames=16),
        test_cohort=CohortPlan("synthetic", n_patients=2, seed=12, n_frames=16),
        train=TrainConfig(batch_size=16, lr=3e-3, max_epochs=1, patience=1, frame_stride=2, val_frame_stride=2, warmup_steps=2),
        net=NetConfig(channels=(4, 8, 8, 8), decoder_channels=8),
        spec=InputSpec(n_alines=120, n_depth=64, depth_spacing_mm=0.08),
        n_folds=5,
        seed=7,
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}", source="train")
    return PRESETS[name]
