"""Named training recipes: what data, how many folds, which hyperparameters.

`default` trains the shipped model's recipe (engine/model/default/) on a 2-core CPU in under an
hour; `small` is a reduced-scale version of it; `tiny` trains on the built-in synthetic task in
seconds (tests, smoke runs). `held_out_style` derives a leave-one-style-out variant of a preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

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
    devices: tuple[str, ...] | None = None  # simulator device styles drawn from (None: all)
    appearance: str = "standard"  # simulator console-setting ranges: standard | stress

    def to_dict(self) -> dict:
        out = asdict(self)
        out["devices"] = None if self.devices is None else list(self.devices)
        return out


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
            max_epochs=30,
            patience=6,
            frame_stride=4,
            max_steps_per_epoch=40,
            val_frame_stride=6,
            warmup_steps=20,
            max_member_seconds=480.0,
            hard_negative_share=0.4,
        ),
    ),
    # reduced scale (about a quarter of `default`): quick checks of data and augmentation changes
    "small": Preset(
        name="small",
        train_cohort=CohortPlan("simulator", n_patients=8, seed=1101, n_frames=200),
        test_cohort=CohortPlan("simulator", n_patients=3, seed=2202, n_frames=200),
        train=TrainConfig(
            batch_size=32,
            lr=3e-3,
            max_epochs=15,
            patience=4,
            frame_stride=4,
            max_steps_per_epoch=30,
            val_frame_stride=8,
            warmup_steps=10,
            max_member_seconds=180.0,
            hard_negative_share=0.4,
        ),
        n_folds=3,
    ),
    "tiny": Preset(
        name="tiny",
        train_cohort=CohortPlan("synthetic", n_patients=5, seed=11, n_frames=16),
        test_cohort=CohortPlan("synthetic", n_patients=2, seed=12, n_frames=16),
        train=TrainConfig(
            batch_size=16, lr=3e-3, max_epochs=1, patience=1, frame_stride=2, val_frame_stride=2, warmup_steps=2
        ),
        net=NetConfig(channels=(4, 8, 8, 8), decoder_channels=8),
        spec=InputSpec(n_alines=120, n_depth=64, depth_spacing_mm=0.08),
        n_folds=5,
        seed=7,
    ),
}


def held_out_style(preset: Preset, style: str) -> Preset:
    """`preset` trained without one appearance and tested only on it: a device style (its train
    cohort draws from the other styles) or "stress" (console settings outside the training ranges)."""
    from tools.simulator.config import DEVICES

    if preset.train_cohort.source != "simulator":
        raise InputError(f"preset {preset.name!r} does not use the simulator", source="generalise")
    if style == "stress":
        train, test = preset.train_cohort, replace(preset.test_cohort, appearance="stress")
    elif style in DEVICES:
        others = tuple(name for name in DEVICES if name != style)
        train = replace(preset.train_cohort, devices=others)
        test = replace(preset.test_cohort, devices=(style,))
    else:
        raise InputError(f"unknown style {style!r}; choose one of {sorted(DEVICES) + ['stress']}", source="generalise")
    return replace(preset, name=f"{preset.name}-without-{style}", train_cohort=train, test_cohort=test)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}", source="train")
    return PRESETS[name]
