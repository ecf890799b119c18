"""`ivuscal analyze`: offline analysis of a recorded pullback (or a live engine's journal) into a report.

The DICOM file is decoded chunk by chunk and driven through `engine.pipeline.CalciumPipeline`,
the same composition the live engine uses; only per-frame rows and a few key-frame images are
kept, never the decoded pullback. Output files: docs/analysis.md and docs/conventions.md.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from engine.dicom import CalibrationOverrides, PullbackInfo, open_pullback
from engine.dicom.cli_options import calibration_options
from engine.errors import InputError
from engine.pipeline import CalciumPipeline, FinalFrame, PipelineSettings, process_chunks
from engine.progress import progress
from engine.quantify import ClinicalFindings, QuantifySettings, largest_arc_deg
from engine.report import FrameGeometry, KeyFrameKeeper, ResultCollector, result_from_probabilities, write_report
from engine.report.result import AnalysisResult
from engine.runtimes.cli_options import runtime_options
from engine.truth import CalciumTruth, read_truth

CHUNK_FRAMES = 64  # frames decoded and inferred per step (`--chunk-frames`)


class RecentChunks:
    """The last few decoded chunks, enough to find the image of a frame that becomes final `lag` frames late."""

    def __init__(self, chunk_frames: int, lag: int) -> None:
        self._chunks: deque[tuple[int, np.ndarray]] = deque(maxlen=math.ceil(lag / chunk_frames) + 1)

    def add(self, start: int, frames: np.ndarray) -> None:
        self._chunks.append((start, frames))

    def image(self, index: int) -> np.ndarray | None:
        for start, frames in self._chunks:
            if start <= index < start + len(frames):
                return frames[index - start]
        return None


def _offer(keeper: KeyFrameKeeper, recent: RecentChunks, final: list[FinalFrame]) -> None:
    for frame in final:
        image = recent.image(frame.index)
        if image is not None:
            keeper.offer(frame.index, largest_arc_deg(frame.arcs), image)


def _source(info: PullbackInfo) -> dict[str, Any]:
    """What the report says about the input: format and calibration only (no path, no patient data)."""
    keep = ("n_frames", "rows", "cols", "photometric", "transfer_syntax_name", "modality", "manufacturer", "model",
            "frame_time_s", "pullback_rate_mm_s", "length_mm", "pixel_spacing_mm", "center_rc", "defaulted", "sources")
    data = info.to_dict()
    return {"kind": "dicom", **{k: data[k] for k in keep}}


def analyze_pullback(
    path: Path,
    runtime: Any,
    settings: PipelineSettings,
    chunk_frames: int,
    overrides: CalibrationOverrides | None,
    quiet: bool,
) -> tuple[AnalysisResult, list[tuple[int, np.ndarray]], FrameGeometry]:
    """Run the pipeline over a DICOM pullback chunk by chunk; the result, key frames and their geometry."""
    with open_pullback(path, overrides=overrides) as pullback:
        info = pullback.info
        cal = info.calibration
        pipeline = CalciumPipeline(runtime, settings)
        pipeline.begin(cal, (info.rows, info.cols))
        collector = ResultCollector(runtime.spec.n_alines, info.n_frames)
        keeper = KeyFrameKeeper(info.n_frames)
        recent = RecentChunks(chunk_frames, settings.window_frames // 2)
        with progress("analyze", total=info.n_frames, quiet=quiet) as bar:
            # decode and polar sampling of the next chunks overlap inference of this one
            for start, frames, outputs in process_chunks(pipeline, pullback.iter_chunks(chunk_frames)):
                recent.add(start, frames)
                collector.add(outputs)
                for out in outputs:
                    _offer(keeper, recent, out.final)
                bar.advance(len(frames))
        end = pipeline.end()
        _offer(keeper, recent, end.final)
        model = runtime.describe() if hasattr(runtime, "describe") else {"model_id": getattr(runtime, "model_id", "")}
        calibration = getattr(runtime, "reliability", None)
        model["reliability"] = calibration.to_dict() if calibration is not None else None
        result = collector.finish(end, pipeline.frame_spacing_mm, settings, model=model, source=_source(info))
        radius_px = runtime.spec.max_radius_mm / min(cal.pixel_spacing_mm)
        return result, keeper.frames(), FrameGeometry(cal.center_rc, radius_px)


def analyze_journal(path: Path, settings: PipelineSettings, *, windows_from_journal: bool = False) -> AnalysisResult:
    """Rebuild the analysis of a live pullback from its journal (issue 7): filter + quantify re-run on its rows.

    Frames the engine dropped (absent from the journal) are filled with probability 0 and counted in
    `source.missing_frames`; frames the engine held from the previous frame are listed in
    `source.filled_frames`. With `windows_from_journal`, the filter windows are those the engine
    used live (so the rebuild reproduces the live results).
    """
    from engine.streaming.journal import read_journal  # only this mode needs it

    journal = read_journal(path)
    if len(journal.frame_index) == 0:
        raise InputError("journal holds no frame rows", source=str(path))
    try:
        cal = journal.meta["calib"]
        spacing = float(cal["frame_time_s"]) * float(cal["pullback_rate_mm_s"])
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"journal start record has no usable calibration ({error})", source=str(path)) from None
    index = journal.frame_index
    if index[0] < 0 or len(np.unique(index)) != len(index):
        raise InputError("journal frame indices are negative or repeated", source=str(path))
    n = int(index[-1]) + 1
    prob = np.zeros((n, journal.probability.shape[1]), dtype=np.float32)
    spread = np.zeros_like(prob)
    prob[index], spread[index] = journal.probability, journal.spread
    if windows_from_journal:
        live = journal.meta.get("settings") or {}
        settings = replace(
            settings,
            window_frames=int(live.get("window_frames", settings.window_frames)),
            window_alines=int(live.get("window_alines", settings.window_alines)),
        )
    source = {
        "kind": "journal",
        "complete": journal.complete,
        "missing_frames": n - len(index),
        "filled_frames": list(journal.filled),
        "calibration": cal,
    }
    model = {"model_id": journal.meta.get("model", "")}
    return result_from_probabilities(prob, spread, spacing, settings, model=model, source=source)


@dataclass(frozen=True)
class Truth:
    """The simulator's truth of one pullback and the file it came from."""

    path: Path
    data: CalciumTruth

    def labels(self, result: AnalysisResult) -> np.ndarray:
        """The truth as bool (frames, A-lines), refused when it covers another number of frames than `result`."""
        labels = np.asarray(self.data.labels(result.n_alines), dtype=bool)
        if labels.shape != (result.n_frames, result.n_alines):
            message = f"truth covers {labels.shape[0]} frames, the analysis {result.n_frames}"
            raise InputError(message, source=str(self.path))
        return labels


def read_truth_file(path: Path) -> Truth:
    """The simulator's truth (give NAME.truth.npz or the NAME.dcm beside it); read before any work."""
    return Truth(Path(path), read_truth(Path(path)))


def report_pullback(
    path: Path,
    out_dir: Path,
    runtime: Any,
    settings: PipelineSettings,
    *,
    chunk_frames: int = CHUNK_FRAMES,
    overrides: CalibrationOverrides | None = None,
    truth: Truth | None = None,
    dicom_outputs: bool = False,
    quiet: bool = True,
) -> tuple[AnalysisResult, dict[str, Any]]:
    """`ivuscal analyze PULLBACK`: analyse a DICOM pullback and write its report to `out_dir`.

    With `truth` the report adds the truth overlay and agreement metrics; with `dicom_outputs` a
    DICOM SR and an arc presentation state referencing `path` (engine/dicom_out). Returns the
    result and the summary written to summary.json. Raises InputError (InvalidPullbackError for a
    file that is not an analysable pullback).
    """
    result, key_frames, geometry = analyze_pullback(path, runtime, settings, chunk_frames, overrides, quiet)
    labels = truth.labels(result) if truth is not None else None
    summary = write_report(out_dir, result, labels, key_frames, geometry)
    if dicom_outputs:
        from engine.dicom_out import write_dicom_outputs

        write_dicom_outputs(out_dir, path, result, geometry)
    return result, summary


_FILE = click.Path(path_type=Path, dir_okay=False)


_DEFAULTS = PipelineSettings()
_PIPELINE_OPTIONS = (
    click.option("--window-frames", default=_DEFAULTS.window_frames, show_default=True, type=int,
                 help="Filter window along frames (odd)."),
    click.option("--window-alines", default=_DEFAULTS.window_alines, show_default=True, type=int,
                 help="Filter window along A-lines (odd)."),
    click.option("--chunk-frames", default=CHUNK_FRAMES, show_default=True, type=click.IntRange(min=1),
                 help="Frames decoded and inferred per step."),
    click.option("--merge-gap-mm", default=_DEFAULTS.quantify.merge_gap_mm, show_default=True,
                 type=click.FloatRange(min=0), help="Merge calcified segments closer than this."),
    click.option("--calcified-nodule/--no-calcified-nodule", default=None,
                 help="Calcified nodule present (score point; default: not assessed)."),
    click.option("--vessel-diameter-mm", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="Reference vessel diameter (score point if < 3.5 mm; default: not assessed)."),
)


def pipeline_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Click decorator shared by `analyze` and `batch`: the filter window, chunk and quantification options.

    The command receives `settings` (PipelineSettings) and `chunk_frames` in their place.
    """

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        window_frames: int,
        window_alines: int,
        merge_gap_mm: float,
        calcified_nodule: bool | None,
        vessel_diameter_mm: float | None,
        **kwargs: Any,
    ) -> Any:
        settings = PipelineSettings(
            window_frames=window_frames,
            window_alines=window_alines,
            quantify=QuantifySettings(merge_gap_mm=merge_gap_mm),
            findings=ClinicalFindings(calcified_nodule, vessel_diameter_mm),
        )
        return command(*args, settings=settings, **kwargs)

    wrapper.__click_params__ = list(getattr(command, "__click_params__", []))  # type: ignore[attr-defined]
    for option in reversed(_PIPELINE_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


@click.command(name="analyze")
@click.argument("pullback", required=False, type=_FILE)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory.")
@click.option("--journal", type=_FILE, help="Rebuild the report from a live engine's journal instead of a DICOM file.")
@pipeline_options
@click.option("--truth", type=_FILE, default=None,
              help="Simulator truth (NAME.truth.npz): overlay it and add agreement metrics.")
@click.option("--dicom", "dicom_outputs", is_flag=True,
              help="Also write a DICOM SR (TID 1500) and an arc presentation state referencing PULLBACK.")
@click.option("--quiet", is_flag=True, help="No progress bar and no closing summary line.")
@calibration_options
@runtime_options
def command(
    pullback: Path | None,
    out_dir: Path,
    journal: Path | None,
    backend: str,
    model: Path | None,
    device: str | None,
    precision: str | None,
    threads: int | None,
    settings: PipelineSettings,
    chunk_frames: int,
    truth: Path | None,
    dicom_outputs: bool,
    quiet: bool,
    overrides: CalibrationOverrides | None,
) -> None:
    """Analyse PULLBACK (a DICOM IVUS pullback) offline and write the report to --out."""
    if (pullback is None) == (journal is None):
        raise click.UsageError("give either a PULLBACK file or --journal FILE")
    if dicom_outputs and pullback is None:
        raise click.UsageError("--dicom needs the PULLBACK file: the DICOM outputs reference its images")
    truth_data = read_truth_file(truth) if truth is not None else None  # read before any work
    if journal is not None:
        ctx = click.get_current_context()
        explicit = any(
            ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
            for name in ("window_frames", "window_alines")
        )
        result = analyze_journal(journal, settings, windows_from_journal=not explicit)
        summary = write_report(out_dir, result, truth_data.labels(result) if truth_data is not None else None)
    elif pullback is not None:
        if not pullback.is_file():
            raise InputError("file not found", source=str(pullback))
        from engine.runtimes import create_runtime  # heavy: only when inferring

        runtime = create_runtime(backend, model, device=device, threads=threads, precision=precision)
        result, summary = report_pullback(
            pullback, out_dir, runtime, settings, chunk_frames=chunk_frames, overrides=overrides,
            truth=truth_data, dicom_outputs=dicom_outputs, quiet=quiet,
        )
    if summary["reliability_notice"]:
        click.echo(f"{out_dir}: {summary['reliability_notice']}", err=quiet)
    if not quiet:
        score = summary["score"]
        click.echo(
            f"{out_dir}: {result.n_frames} frames, {len(summary['lesions'])} lesion(s), "
            f"max arc {summary['max_arc_deg']:.0f} deg, calcium length {summary['calcium_length_mm']:.1f} mm, "
            f"calcium score (arc points) {score['total_assessed']}"
        )

