"""`ivuscal tune-filter`: grid-search the post-processing window against truth.

Input: a directory of pullbacks analysed with `ivuscal analyze --truth` (each a folder holding
`calcium_map.npz`, `summary.json` and `truth_labels.npz`, found recursively). The ensemble's
probabilities before the filter are in `calcium_map.npz`, so every window is re-applied to the
same probabilities without re-running inference; the model is the one each analysis used.

For each window (A-lines x frames) the filter and quantification re-run through the pipeline's
post-inference stages (`engine.report.result_from_probabilities`) and are scored against the
truth, as the study did, on:
- calcium-score agreement: the fraction of pullbacks whose arc points of the IVUS calcium score
  (engine/quantify/score.py) equal the truth's;
- Dice over all (frame, A-line) cells of the cohort (pooled) and its mean per pullback
  (engine.metrics; a pullback without calcium in truth or prediction has no Dice and is skipped).
Ties on agreement go to the higher pooled Dice. Outputs: tune_filter.csv, tune_filter.md and
tune_filter.png (one heat map per criterion).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np

from engine import atomic
from engine.errors import InputError
from engine.figures import save_figure
from engine.metrics import Confusion, mean_defined
from engine.pipeline import PipelineSettings
from engine.progress import progress
from engine.quantify import QuantifySettings, summarize_pullback
from engine.report import result_from_probabilities

DEFAULT_ALINES = (1, 21, 41, 61, 81, 101)
DEFAULT_FRAMES = (1, 5, 9, 13, 17, 21)


@dataclass(frozen=True)
class TruthCase:
    """One analysed pullback with its truth: probabilities before the filter and true calcium."""

    name: str
    probability: np.ndarray  # float32 (frames, A)
    truth: np.ndarray  # bool (frames, A)
    frame_spacing_mm: float
    truth_score: int  # arc points of the calcium score on the truth
    truth_max_arc_deg: float


@dataclass(frozen=True)
class GridCell:
    """Scores of one window over the cohort."""

    window_alines: int
    window_frames: int
    score_agreement: float
    dice_pooled: float
    dice_mean: float
    max_arc_error_deg: float  # mean absolute error of the pullback's maximum arc


def load_cases(root: Path, quantify: QuantifySettings) -> list[TruthCase]:
    """Every analysis folder under `root` that has truth; InputError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("not a directory of analysed pullbacks", source=str(root))
    cases = []
    for truth_file in sorted(root.rglob("truth_labels.npz")):
        folder = truth_file.parent
        try:
            with np.load(folder / "calcium_map.npz") as data, np.load(truth_file) as truth_data:
                probability = data["probability"].astype(np.float32)
                truth = truth_data["calcium"].astype(bool)
            spacing = float(json.loads((folder / "summary.json").read_text())["frame_spacing_mm"])
        except (OSError, KeyError, ValueError) as error:
            raise InputError(f"incomplete analysis folder ({error})", source=str(folder)) from None
        if truth.shape != probability.shape:
            raise InputError(f"truth {truth.shape} and probabilities {probability.shape} differ", source=str(folder))
        truth_summary = summarize_pullback(truth, spacing, quantify)
        name = str(folder.relative_to(root))
        cases.append(TruthCase(name, probability, truth, spacing, truth_summary.score.total, truth_summary.max_arc_deg))
    if not cases:
        raise InputError("no analysed pullbacks with truth (run `ivuscal analyze --truth` first)", source=str(root))
    return cases


def evaluate_window(
    cases: list[TruthCase], window_alines: int, window_frames: int, quantify: QuantifySettings
) -> GridCell:
    """Filter every case with one window and score it against the truth."""
    settings = PipelineSettings(window_frames=window_frames, window_alines=window_alines, quantify=quantify)
    agree, dices, arc_errors = 0, [], []
    pooled = Confusion()
    for case in cases:
        result = result_from_probabilities(case.probability, None, case.frame_spacing_mm, settings)
        counts = Confusion.of(result.calcium, case.truth)
        pooled += counts
        dices.append(counts.metrics()["dice"])
        agree += int(result.summary.score.total == case.truth_score)
        arc_errors.append(abs(result.summary.max_arc_deg - case.truth_max_arc_deg))
    return GridCell(window_alines, window_frames, agree / len(cases), pooled.metrics()["dice"], mean_defined(dices),
                    float(np.mean(arc_errors)))


def best_cell(cells: list[GridCell]) -> GridCell:
    """Highest score agreement, then pooled Dice, then the smaller window."""
    return max(cells, key=lambda c: (c.score_agreement, np.nan_to_num(c.dice_pooled, nan=-1.0),
                                     -c.window_alines * c.window_frames))


def write_csv(path: Path, cells: list[GridCell]) -> None:
    with atomic.atomic_path(path) as partial, open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(cells[0])))
        writer.writeheader()
        writer.writerows(asdict(c) for c in cells)


def write_markdown(path: Path, cells: list[GridCell], n_cases: int) -> None:
    best = best_cell(cells)
    lines = [
        f"# Filter window grid ({n_cases} pullbacks)",
        "",
        f"Best: {best.window_alines} A-lines x {best.window_frames} frames "
        f"(score agreement {best.score_agreement:.3f}, pooled Dice {best.dice_pooled:.3f}).",
        "",
        "| A-lines | frames | score agreement | Dice (pooled) | Dice (mean) | max-arc error (deg) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.window_alines} | {c.window_frames} | {c.score_agreement:.3f} | {c.dice_pooled:.3f} "
        f"| {c.dice_mean:.3f} | {c.max_arc_error_deg:.1f} |"
        for c in cells
    ]
    atomic.write_text(path, "\n".join(lines) + "\n")


def plot_heatmaps(path: Path, cells: list[GridCell], alines: list[int], frames: list[int]) -> None:
    """One heat map per criterion: A-lines down, frames across."""
    import matplotlib  # plotting only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_key = {(c.window_alines, c.window_frames): c for c in cells}
    criteria = [("score_agreement", "calcium-score agreement"), ("dice_pooled", "Dice (pooled)")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    for ax, (field, title) in zip(axes, criteria, strict=True):
        grid = np.array([[getattr(by_key[(a, f)], field) for f in frames] for a in alines])
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for i in range(len(alines)):
            for j in range(len(frames)):
                colour = "white" if grid[i, j] < 0.6 else "black"
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(frames)), [str(f) for f in frames])
        ax.set_yticks(range(len(alines)), [str(a) for a in alines])
        ax.set_xlabel("window (frames)")
        ax.set_ylabel("window (A-lines)")
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046)
    save_figure(fig, path)


def _odd_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{name} must be comma-separated odd integers, got {text!r}") from None
    if not values or any(v < 1 or v % 2 == 0 for v in values):
        raise InputError(f"{name} must be comma-separated positive odd integers, got {text!r}")
    return sorted(set(values))


@click.command(name="tune-filter")
@click.argument("cohort", type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory.")
@click.option("--alines", default=",".join(map(str, DEFAULT_ALINES)), show_default=True,
              help="Window sizes along A-lines (odd).")
@click.option("--frames", default=",".join(map(str, DEFAULT_FRAMES)), show_default=True,
              help="Window sizes along frames (odd).")
@click.option("--merge-gap-mm", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Lesion gap merge length.")
@click.option("--quiet", is_flag=True, help="No progress bar and no closing line.")
def command(cohort: Path, out_dir: Path, alines: str, frames: str, merge_gap_mm: float, quiet: bool) -> None:
    """Grid-search the filter window on COHORT (a directory of `ivuscal analyze --truth` outputs)."""
    alines_list, frames_list = _odd_list(alines, "--alines"), _odd_list(frames, "--frames")
    quantify = QuantifySettings(merge_gap_mm=merge_gap_mm)
    cases = load_cases(cohort, quantify)
    cells = []
    with progress("tune-filter", total=len(alines_list) * len(frames_list), quiet=quiet) as bar:
        for a in alines_list:
            for f in frames_list:
                cells.append(evaluate_window(cases, a, f, quantify))
                bar.advance()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "tune_filter.csv", cells)
    write_markdown(out_dir / "tune_filter.md", cells, len(cases))
    plot_heatmaps(out_dir / "tune_filter.png", cells, alines_list, frames_list)
    if not quiet:
        best = best_cell(cells)
        click.echo(
            f"{out_dir}: best window {best.window_alines} A-lines x {best.window_frames} frames "
            f"on {len(cases)} pullbacks "
            f"(score agreement {best.score_agreement:.3f}, pooled Dice {best.dice_pooled:.3f})"
        )
