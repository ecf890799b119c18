"""Report plots (matplotlib, Agg backend): longitudinal calcium map, arc profile, key frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Wedge

from engine.figures import save_figure
from engine.geometry import ring_radius_px
from engine.quantify import Arc, largest_arc_deg, max_arcs_deg
from engine.report.result import AnalysisResult

CALCIUM_COLOUR = "#ff8c00"
TRUTH_COLOUR = "#00c0ff"


def _extent(result: AnalysisResult) -> list[float]:
    pos = result.frame_position_mm
    step = pos[1] - pos[0] if len(pos) > 1 else 1.0
    return [pos[0] - step / 2, pos[-1] + step / 2, 360.0, 0.0]


def plot_longitudinal_map(path: Path, result: AnalysisResult, truth: np.ndarray | None = None) -> None:
    """Position x angle, IVUS longitudinal-view style: probability in grey, calcium overlaid, truth outlined."""
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=100)
    image: dict[str, Any] = {"aspect": "auto", "extent": _extent(result), "interpolation": "nearest"}
    ax.imshow(result.probability.T, cmap="gray", vmin=0, vmax=1, **image)
    overlay = np.ma.masked_where(~result.calcium.T, result.calcium.T)
    ax.imshow(overlay, cmap=ListedColormap([CALCIUM_COLOUR]), alpha=0.55, **image)
    if truth is not None and truth.any():
        x = result.frame_position_mm
        ax.contour(x, result.angles_deg, truth.T.astype(float), levels=[0.5], colors=TRUTH_COLOUR, linewidths=0.8)
    ax.set_xlabel("position along pullback (mm)")
    ax.set_ylabel("angle (deg, clockwise from 3 o'clock)")
    ax.set_yticks([0, 90, 180, 270, 360])
    title = "Longitudinal calcium map: probability (grey), calcium after filter (orange)"
    ax.set_title(title + (", truth (blue outline)" if truth is not None else ""), fontsize=10)
    save_figure(fig, path)


def plot_arc_profile(path: Path, result: AnalysisResult, truth: np.ndarray | None = None) -> None:
    """Largest arc per frame along the pullback with lesion spans, score thresholds and the score."""
    summary = result.summary
    x = result.frame_position_mm
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=100)
    for i, lesion in enumerate(summary.lesions):
        ax.axvspan(lesion.start_mm, lesion.end_mm + summary.frame_spacing_mm, color="#ffe0b0", alpha=0.6, lw=0)
        ax.text(lesion.start_mm, 372, f"L{i}", fontsize=8, va="bottom")
    ax.plot(x, max_arcs_deg(result.calcium), color=CALCIUM_COLOUR, lw=1.4, label="largest arc (after filter)")
    if truth is not None:
        ax.plot(x, max_arcs_deg(truth), color=TRUTH_COLOUR, lw=1.0, ls="--", label="truth")
    for level in (90, 180, 270):
        ax.axhline(level, color="grey", lw=0.5, ls=":")
    score = summary.score.to_dict()
    ax.set_title(
        f"max arc {summary.max_arc_deg:.0f} deg, calcium length {summary.calcium_length_mm:.1f} mm, "
        f"{len(summary.lesions)} lesion(s); IVUS calcium score (arc points) {score['total_assessed']}"
        f" (>270 deg over >=5 mm: {score['arc_gt_threshold_over_length']}, 360 deg: {score['arc_360']}; "
        "nodule, vessel size: " + ("given" if summary.score.complete else "not assessed") + ")",
        fontsize=9,
    )
    ax.set_xlim(x[0] if len(x) else 0, (x[-1] if len(x) else 0) + summary.frame_spacing_mm)
    ax.set_ylim(0, 390)
    ax.set_yticks([0, 90, 180, 270, 360])
    ax.set_xlabel("position along pullback (mm)")
    ax.set_ylabel("arc (deg)")
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path)


@dataclass(frozen=True)
class KeyFrame:
    """A frame to show: its Cartesian image (uint8 (H, W)), arcs, and optionally the true arcs."""

    index: int
    position_mm: float
    image: np.ndarray
    arcs: list[Arc]
    truth_arcs: list[Arc] | None = None


def plot_key_frames(
    path: Path, frames: list[KeyFrame], center_rc: tuple[float, float], radius_px: float
) -> None:
    """Key frames with their calcium arcs drawn as a ring of wedges around the catheter centre.

    The ring sits at the polar grid's reach (`radius_px`), pulled in to stay inside the image.
    """
    n = max(len(frames), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.7), dpi=100, squeeze=False)
    for ax, frame in zip(axes[0], frames, strict=False):
        ax.imshow(frame.image, cmap="gray", vmin=0, vmax=255)
        centre = (center_rc[1], center_rc[0])  # (x = col, y = row); data angles run +col -> +row
        radius_px = ring_radius_px(center_rc, radius_px, frame.image.shape)
        for arc in frame.arcs:
            ax.add_patch(Wedge(centre, radius_px, arc.start_deg, arc.start_deg + arc.extent_deg,
                               width=radius_px * 0.12, color=CALCIUM_COLOUR, alpha=0.8))
        for arc in frame.truth_arcs or []:
            ax.add_patch(Wedge(centre, radius_px * 1.06, arc.start_deg, arc.start_deg + arc.extent_deg,
                               width=radius_px * 0.04, color=TRUTH_COLOUR, alpha=0.9))
        arc_max = largest_arc_deg(frame.arcs)
        ax.set_title(f"frame {frame.index} ({frame.position_mm:.1f} mm): {arc_max:.0f} deg", fontsize=9)
        ax.set_axis_off()
    for ax in axes[0][len(frames):]:
        ax.set_axis_off()
    save_figure(fig, path)
