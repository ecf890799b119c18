"""Render the example figures of docs/simulator.md (run: python -m tools.simulator.figures DIR).

Every panel is a real simulator frame; calcium truth is drawn as a red ring just inside the field
of view (Cartesian) or a red bar above the A-lines (polar); the guidewire and other confounders
carry no label.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from tools.simulator.config import LesionSpec, PullbackConfig
from tools.simulator.pullback import PullbackStream, iter_pullback

NONE = dict(guidewire=False, stent=False, side_branches=False, attenuated_plaque=False, dense_fibrous=False,
            catheter_artefacts=False, perivascular=False)
RED = np.array([230, 40, 40], dtype=np.uint8)


def overlay_truth(frame: np.ndarray, arcs_labels: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """RGB copy of a frame with calcified A-lines (bool, 360) drawn as a red outer ring."""
    rgb = np.repeat(frame[..., None], 3, axis=-1) if frame.ndim == 2 else frame.copy()
    size = frame.shape[0]
    rows, cols = np.mgrid[0:size, 0:size]
    radius = np.hypot(rows - centre[0], cols - centre[1])
    angle = (np.rad2deg(np.arctan2(rows - centre[0], cols - centre[1])) % 360.0).astype(int) % 360
    ring = (radius > size * 0.47) & (radius < size * 0.49) & arcs_labels[angle]
    rgb[ring] = RED
    return rgb


def polar_with_truth(polar: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """RGB depth x A-line image of a polar frame (A, D) with a red bar above calcified A-lines."""
    n_alines = polar.shape[0]
    centres = ((np.arange(n_alines) + 0.5) * 360.0 / n_alines).astype(int)
    image = np.repeat(polar.T[..., None], 3, axis=-1)
    bar = np.zeros((10, n_alines, 3), dtype=np.uint8)
    bar[:, labels[centres]] = RED
    return np.concatenate([bar, image])


def _frame_with(stream: PullbackStream, kind: str | None) -> int:
    """The middle frame of the first confounder of `kind` (or of the largest calcium arc)."""
    if kind is None:
        return int(np.argmax(stream.truth.labels(360).sum(axis=1)))
    spans = [c for c in stream.truth.confounders if c["kind"] == kind]
    return (spans[0]["start_frame"] + spans[0]["end_frame"]) // 2 if spans else stream.config.n_frames // 2


def panel(config: PullbackConfig, seed: int, kind: str | None = None):
    """RGB Cartesian frame with truth, its polar image, labels and stream, of the frame showing `kind`."""
    stream = iter_pullback(config, seed)
    index = _frame_with(stream, kind)
    image = stream.render(np.array([index]))[0]
    labels = stream.truth.labels(360)[index]
    polar = stream.polar(np.array([index]))[0]
    return overlay_truth(image, labels, stream.calibration.centre_rc), polar, labels, stream


def _save_grid(path: Path, panels: list[tuple[str, np.ndarray]], columns: int, scale: float = 2.2) -> None:
    import matplotlib  # only the figure script needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(scale * columns, scale * rows + 0.3))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (title, image) in zip(np.ravel(axes), panels, strict=False):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    _save_small(fig, path)
    plt.close(fig)


def _save_small(fig, path: Path) -> None:
    """PNG with a 96-colour palette: keeps each documentation figure well under 300 KB."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, format="png")
    Image.open(buffer).convert("RGB").quantize(colors=96).save(path, optimize=True)


def render_all(out: Path) -> list[Path]:
    """Write the documentation figures into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    small = dict(image_size=384, n_frames=240)
    written = []

    calcium = [
        ("superficial calcium, 120 deg", LesionSpec(0.5, 3.0, 120, 60)),
        ("deep calcium", LesionSpec(0.5, 3.0, 90, 200, depth_fraction=0.6)),
        ("calcium + reverberations", LesionSpec(0.5, 3.0, 70, 300, reverberation=True)),
        ("calcified nodule", LesionSpec(0.5, 3.0, 60, 150, nodule=True)),
        ("360 deg calcium", LesionSpec(0.5, 3.0, 360, 0)),
    ]
    panels = []
    for title, spec in calcium:
        image, *_ = panel(PullbackConfig(**small, lesions=(spec,), **{**NONE, "guidewire": True}), 3, None)
        panels.append((title, image))
    confounders = [
        ("guidewire (not calcium)", "guidewire", dict(guidewire=True)),
        ("attenuated plaque", "attenuated", dict(attenuated_plaque=True)),
        ("dense fibrous plaque", "fibrous", dict(dense_fibrous=True)),
        ("stent struts", "stent", dict(stent=True)),
        ("side branch", "branch", dict(side_branches=True)),
        ("air / sheath artefacts", "bubble", dict(catheter_artefacts=True)),
        ("vein beside the vessel", "vein", dict(perivascular=True)),
    ]
    for title, kind, on in confounders:
        config = PullbackConfig(**{**small, "n_frames": 600}, calcium_fraction=0.0, **{**NONE, **on})
        image, *_ = panel(config, 1 if kind == "vein" else 5, kind)
        panels.append((title, image))
    path = out / "tissue_and_confounders.png"
    _save_grid(path, panels, columns=4)
    written.append(path)

    cartesian, polars = [], []
    for device in ("rotational40", "rotational60", "phased20"):
        config = PullbackConfig(**small, device=device, color="rgb", lesions=(LesionSpec(0.5, 3.0, 140, 100),),
                                **{**NONE, "guidewire": True, "side_branches": True})
        image, polar, labels, _ = panel(config, 7, None)
        cartesian.append((f"{device} (RGB export)", image))
        polars.append((f"{device} polar: depth x A-line", polar_with_truth(polar, labels)))
    path = out / "devices_cartesian_polar.png"
    _save_grid(path, cartesian + polars, columns=3, scale=2.6)
    written.append(path)

    path = out / "longitudinal.png"
    _longitudinal(path)
    written.append(path)
    return written


def _longitudinal(path: Path) -> None:
    """A longitudinal cut (the 90/270 degree diameter over frames) with the calcium map below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = PullbackConfig(n_frames=900, image_size=256, calcium_fraction=0.45, annotations=False,
                            **{**NONE, "guidewire": True, "side_branches": True, "stent": True})
    stream = iter_pullback(config, 14)
    centre = stream.calibration.centre_rc[1]
    cut = np.concatenate([chunk[:, :, centre] for _, chunk in stream], axis=0).T  # (rows, frames)
    labels = stream.truth.labels(360)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True,
                                      gridspec_kw={"height_ratios": [1.3, 1]})
    top.imshow(cut, cmap="gray", aspect="auto", vmin=0, vmax=255)
    top.set_ylabel("row (px)")
    top.set_title("longitudinal view through the catheter (6 o'clock up, 12 o'clock down) - heartbeat saw-tooth",
                  fontsize=8)
    bottom.imshow(labels.T, cmap="Reds", aspect="auto", interpolation="nearest", origin="lower")
    bottom.set_ylabel("angle (deg)")
    bottom.set_xlabel("frame")
    bottom.set_title("calcium truth per frame and A-line (red), displayed-image angles", fontsize=8)
    fig.tight_layout(pad=0.3)
    _save_small(fig, path)
    plt.close(fig)


if __name__ == "__main__":
    for written in render_all(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/simulator")):
        print(written, f"{written.stat().st_size / 1024:.0f} KB")
