"""What a simulated pullback looks like: the device it imitates and the content it contains.

`DeviceStyle` holds the physics of one catheter type (frequency, resolution, ring-down,
attenuation); `PullbackConfig` chooses a device, the acquisition settings, the export format
and which lesions and confounders appear. `PullbackConfig.random` samples a varied one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from engine.errors import InputError
from tools.simulator.appearance import RANGES, draw


@dataclass(frozen=True)
class DeviceStyle:
    """Acoustic and geometric character of one catheter type."""

    name: str
    frequency_mhz: float
    n_alines: int  # A-lines rendered per frame
    rotational: bool  # mechanical rotation -> NURD possible
    catheter_radius_mm: float
    fov_mm: float  # width of the square image
    axial_psf_mm: float  # Gaussian sigma of the pulse envelope
    lateral_beam_mm: float  # Gaussian sigma of the beam across A-lines
    blood_db: float  # blood backscatter relative to fibrous plaque
    tissue_att_db_mm: float  # two-way attenuation of soft tissue
    ringdown_mm: float  # depth of the bright ring-down zone outside the sheath
    manufacturer: str
    model_name: str


DEVICES: dict[str, DeviceStyle] = {
    "rotational40": DeviceStyle(
        "rotational40", 40.0, 512, True, 0.50, 10.0, 0.022, 0.060, -19.0, 3.2, 0.06,
        "Synthetic IVUS Lab", "SIM-R40 rotational 40 MHz (simulated)",
    ),
    "rotational60": DeviceStyle(
        "rotational60", 60.0, 512, True, 0.45, 10.0, 0.016, 0.045, -12.0, 4.8, 0.05,
        "Synthetic IVUS Lab", "SIM-R60 HD rotational 60 MHz (simulated)",
    ),
    "phased20": DeviceStyle(
        "phased20", 20.0, 256, False, 0.58, 10.0, 0.040, 0.110, -29.0, 1.6, 0.30,
        "Synthetic Array Imaging", "SIM-P20 phased array 20 MHz (simulated)",
    ),
}

DEVICE_SHARE = {"rotational40": 0.45, "rotational60": 0.25, "phased20": 0.30}  # in random cohorts
COLOR_MODES = ("gray", "rgb")


@dataclass(frozen=True)
class LesionSpec:
    """An explicitly placed calcium lesion (tests, figures); random ones are sampled otherwise.

    `centre_deg` is the tissue angle of the arc centre at mid-lesion; `depth_fraction` places the
    leading edge between the lumen (0, superficial) and the media (1, deep).
    """

    start_mm: float
    length_mm: float
    max_arc_deg: float
    centre_deg: float = 90.0
    depth_fraction: float = 0.0
    thickness_mm: float = 0.5
    reverberation: bool = False
    nodule: bool = False
    drift_deg: float = 0.0  # change of the arc centre over the lesion length


@dataclass(frozen=True)
class PullbackConfig:
    """Settings of one simulated pullback. Defaults give a plain 40 MHz rotational run."""

    n_frames: int = 300
    image_size: int = 512
    device: str = "rotational40"
    fps: float = 30.0
    pullback_rate_mm_s: float = 0.5
    color: str = "gray"  # 'gray' | 'rgb'
    jpeg: bool = False
    jpeg_quality: int = 90
    fov_mm: float | None = None  # width of the displayed square; None: the device's (10 mm)
    psf_scale: float = 1.0  # pulse length and beam width relative to the device's (catheter-to-catheter spread)
    appearance: str = "standard"  # console-setting ranges (appearance.RANGES): 'standard' | 'stress'
    label_noise: bool = False
    annotations: bool = True
    # content
    calcium_fraction: float = 0.4  # target share of frames with calcium (ignored when lesions given)
    lesions: tuple[LesionSpec, ...] | None = None
    guidewire: bool = True
    stent: bool = False
    side_branches: bool = True
    attenuated_plaque: bool = True
    dense_fibrous: bool = True
    catheter_artefacts: bool = True
    perivascular: bool = True  # veins (echolucent) and pericardium (bright) beyond the vessel
    cardiac_motion: bool = True
    nurd: bool | None = None  # None: on for rotational devices

    def __post_init__(self) -> None:
        self.validate()

    @property
    def style(self) -> DeviceStyle:
        """The device, with its point-spread function scaled by `psf_scale`."""
        base = DEVICES[self.device]
        if self.psf_scale == 1.0:
            return base
        return replace(base, axial_psf_mm=base.axial_psf_mm * self.psf_scale,
                       lateral_beam_mm=base.lateral_beam_mm * self.psf_scale)

    @property
    def frame_time_s(self) -> float:
        return 1.0 / self.fps

    @property
    def frame_step_mm(self) -> float:
        return self.pullback_rate_mm_s / self.fps

    @property
    def pixel_mm(self) -> float:
        return (self.fov_mm or self.style.fov_mm) / self.image_size

    @property
    def nurd_enabled(self) -> bool:
        return self.style.rotational if self.nurd is None else (self.nurd and self.style.rotational)

    def validate(self) -> None:
        """Raise `InputError` naming the first impossible setting."""
        if self.device not in DEVICES:
            raise InputError(f"unknown device style {self.device!r}; choose one of {sorted(DEVICES)}", source="synth")
        if self.color not in COLOR_MODES:
            raise InputError(f"color must be one of {COLOR_MODES}, got {self.color!r}", source="synth")
        if not 1 <= self.n_frames <= 20000:
            raise InputError(f"n_frames must be in 1..20000, got {self.n_frames}", source="synth")
        if self.image_size < 128 or self.image_size % 16:
            raise InputError(f"image_size must be a multiple of 16 and >= 128, got {self.image_size}", source="synth")
        if not 1.0 <= self.fps <= 120.0:
            raise InputError(f"fps must be in 1..120, got {self.fps}", source="synth")
        if not 0.05 <= self.pullback_rate_mm_s <= 10.0:
            raise InputError(f"pullback rate must be in 0.05..10 mm/s, got {self.pullback_rate_mm_s}", source="synth")
        if not 0.0 <= self.calcium_fraction <= 0.95:
            raise InputError(f"calcium_fraction must be in 0..0.95, got {self.calcium_fraction}", source="synth")
        if self.fov_mm is not None and not 8.0 <= self.fov_mm <= 16.0:
            raise InputError(f"fov_mm must be in 8..16 mm, got {self.fov_mm}", source="synth")
        if not 0.5 <= self.psf_scale <= 2.0:
            raise InputError(f"psf_scale must be in 0.5..2, got {self.psf_scale}", source="synth")
        if self.appearance not in RANGES:
            raise InputError(f"appearance must be one of {sorted(RANGES)}, got {self.appearance!r}", source="synth")
        if not 10 <= self.jpeg_quality <= 100:
            raise InputError(f"jpeg_quality must be in 10..100, got {self.jpeg_quality}", source="synth")

    def with_(self, **changes) -> PullbackConfig:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    @classmethod
    def random(cls, rng: np.random.Generator, n_frames: int | None = None,
               devices: tuple[str, ...] | None = None, **fixed) -> PullbackConfig:
        """A varied configuration: device, rate, export format and content all sampled.

        Across a cohort every confounder appears; calcium covers about 30-50 % of frames.
        `devices` limits the device styles drawn from (leave-one-style-out cohorts); keyword
        arguments in `fixed` override the sampled values (`appearance` sets the range the
        catheter's pulse and beam scale is drawn from).
        """
        names = list(DEVICES) if devices is None else list(devices)
        if not names or set(names) - set(DEVICES):
            raise InputError(f"devices must be a non-empty subset of {sorted(DEVICES)}, got {devices}", source="synth")
        weights = np.array([DEVICE_SHARE[name] for name in names])
        device = str(rng.choice(names, p=weights / weights.sum()))
        fps = 60.0 if device == "rotational60" and rng.random() < 0.6 else 30.0
        rate = float(rng.choice([0.5, 1.0], p=[0.6, 0.4]))
        if n_frames is None:
            n_frames = int(np.clip(np.exp(rng.uniform(np.log(200), np.log(3000))), 200, 3000))
        color = "rgb" if rng.random() < 0.35 else "gray"
        values = dict(
            n_frames=n_frames,
            device=device,
            fps=fps,
            pullback_rate_mm_s=rate,
            color=color,
            jpeg=bool(rng.random() < 0.3),
            jpeg_quality=int(rng.integers(75, 96)),
            fov_mm=None if rng.random() < 0.5 else round(float(rng.uniform(9.6, 11.5)), 2),
            psf_scale=round(draw(rng, RANGES.get(fixed.get("appearance"), RANGES["standard"]).psf_scale), 3),
            calcium_fraction=float(rng.uniform(0.15, 0.8)) if rng.random() > 0.08 else 0.0,
            guidewire=bool(rng.random() < 0.9),
            stent=bool(rng.random() < 0.3),
            side_branches=bool(rng.random() < 0.8),
            attenuated_plaque=bool(rng.random() < 0.5),
            dense_fibrous=bool(rng.random() < 0.6),
            catheter_artefacts=bool(rng.random() < 0.6),
            perivascular=bool(rng.random() < 0.85),
            cardiac_motion=bool(rng.random() < 0.9),
        )
        values.update(fixed)
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON-ready settings (for manifests and DICOM-side metadata)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "lesions"}
        out["lesions"] = None if self.lesions is None else [vars(les) for les in self.lesions]
        return out
