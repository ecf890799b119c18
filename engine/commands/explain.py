"""`ivuscal explain PULLBACK --frame N --out PNG`: where the ensemble looked when it called calcium.

The frame is sampled onto the polar grid as in analysis; the ensemble's probabilities for the
frame and its neighbours go through the 13 x 61 filter to give the predicted arc; the attention
map is Grad-CAM at the last 2-D encoder level (`CalciumNet.attention_map`), averaged over the
members, upsampled to the polar grid (circularly along the angle) and drawn in Cartesian view
through `engine.geometry.polar_to_cartesian`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from engine.dicom import CalibrationOverrides, open_pullback
from engine.dicom.calibration import Calibration
from engine.dicom.cli_options import calibration_options
from engine.errors import InputError
from engine.figures import save_figure
from engine.filter import DEFAULT_WINDOW, filter_map
from engine.geometry import PolarSampler, polar_to_cartesian
from engine.model.spec import InputSpec
from engine.model.weights import LoadedEnsemble, load_ensemble


@dataclass
class Explanation:
    """One frame, what the ensemble said about it, and where it looked."""

    frame_index: int
    image: np.ndarray  # uint8 (rows, cols)
    calibration: Calibration
    spec: InputSpec
    probability: np.ndarray  # float32 (A,): ensemble mean before the filter
    calcium: np.ndarray  # bool (A,): after the filter
    attention: np.ndarray  # float32 (n_depth, A) in [0, 1]


def upsample_attention(cam: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """(B, d, a) coarse attention -> (B, n_depth, n_alines), bilinear and circular along the angle."""
    scale = spec.n_alines // cam.shape[-1]
    padded = torch.cat([cam[..., -1:], cam, cam[..., :1]], dim=-1)[:, None]
    up = F.interpolate(padded, size=(spec.n_depth, padded.shape[-1] * scale), mode="bilinear", align_corners=False)
    return up[:, 0, :, scale : scale + spec.n_alines]


def explain_frame(path: Path, frame: int, ensemble: LoadedEnsemble, window: tuple[int, int] = DEFAULT_WINDOW,
                  overrides: CalibrationOverrides | None = None) -> Explanation:
    """Read frame `frame` (and the filter's neighbours) of the pullback at `path` and explain it."""
    with open_pullback(path, overrides=overrides) as pullback:
        info = pullback.info
        if not 0 <= frame < info.n_frames:
            raise InputError(f"frame {frame} is outside the pullback's {info.n_frames} frames", source=str(path))
        half = window[0] // 2
        start, stop = max(0, frame - half), min(info.n_frames, frame + half + 1)
        frames = pullback.read_frames(start, stop)
    cal = info.calibration
    sampler = PolarSampler((info.rows, info.cols), cal.center_rc, cal.pixel_spacing_mm, ensemble.spec)
    polar = torch.from_numpy(sampler(frames))[:, None]
    with torch.no_grad():
        prob = torch.stack([torch.sigmoid(m(polar)) for m in ensemble.models]).mean(dim=0).numpy()
    calcium = np.asarray(filter_map(prob, window[0], window[1]))[frame - start]
    target = torch.from_numpy(calcium[None]) if calcium.any() else None
    cams = [m.attention_map(polar[frame - start : frame - start + 1], target)[1] for m in ensemble.models]
    attention = upsample_attention(torch.stack(cams).mean(dim=0), ensemble.spec)[0]
    attention = attention / attention.max().clamp_min(1e-12)
    return Explanation(frame, frames[frame - start], cal, ensemble.spec, prob[frame - start], calcium,
                       attention.numpy())


def render(explanation: Explanation, out: Path) -> None:
    """Two panels: the frame with the predicted arc, and the same with the attention overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = explanation
    cal, spec = e.calibration, e.spec
    shape = e.image.shape
    ring = np.zeros((spec.n_depth, spec.n_alines), np.float32)
    ring[-16:-10, e.calcium] = 1.0  # a band just inside the 5 mm edge of a typical 10 mm field of view

    def to_cart(polar: np.ndarray) -> np.ndarray:
        return polar_to_cartesian(polar, shape, cal.center_rc, cal.pixel_spacing_mm, spec)

    arc = np.ma.masked_less(to_cart(ring), 0.5)
    attention = to_cart(e.attention)
    (r0, c0), (dy, dx) = cal.center_rc, cal.pixel_spacing_mm
    extent = (-c0 * dx, (shape[1] - c0) * dx, (shape[0] - r0) * dy, -r0 * dy)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.4), dpi=90)
    arc_deg = e.calcium.sum() * 360.0 / spec.n_alines
    titles = (f"frame {e.frame_index}: calcium arc {arc_deg:.0f}°", "attention (Grad-CAM, ensemble mean)")
    for ax, title in zip(axes, titles, strict=True):
        ax.imshow(e.image, cmap="gray", vmin=0, vmax=255, extent=extent)
        ax.imshow(arc, cmap="autumn", vmin=0, vmax=1, extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("mm")
    axes[1].imshow(np.ma.masked_less(attention, 0.15), cmap="jet", alpha=0.45, vmin=0, vmax=1, extent=extent)
    save_figure(fig, out)


@click.command(name="explain")
@click.argument("pullback", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--frame", "frame", type=int, required=True, help="Frame index (0-based).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="PNG file to write.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="Ensemble weights. [default: the shipped model]")
@click.option("--window-frames", type=int, default=DEFAULT_WINDOW[0], show_default=True)
@click.option("--window-alines", type=int, default=DEFAULT_WINDOW[1], show_default=True)
@calibration_options
def command(pullback: Path, frame: int, out: Path, model_path: Path | None, window_frames: int, window_alines: int,
            overrides: CalibrationOverrides | None) -> None:
    """Render frame N of PULLBACK with its predicted calcium arc and the ensemble's attention map."""
    ensemble = load_ensemble(model_path)
    explanation = explain_frame(pullback, frame, ensemble, (window_frames, window_alines), overrides)
    render(explanation, out)
    arc = explanation.calcium.sum() * 360.0 / ensemble.spec.n_alines
    click.echo(f"wrote {out}: frame {frame}, calcium arc {arc:.0f} deg")
