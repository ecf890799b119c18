"""`ivuscal train` and `ivuscal evaluate`."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import click
import torch

from engine.errors import InputError
from engine.filter import DEFAULT_WINDOW
from engine.json_output import write_json
from training.reliability import member_spread

log = logging.getLogger("training")


@click.command("train")
@click.option("--preset", "preset_name", default="default", show_default=True,
              help="Training recipe: default (the shipped model) or tiny.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Data, caches, checkpoints and log. [default: runs/<preset>]")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Ensemble file to write. [default: <work-dir>/ensemble.safetensors]")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True, help="CPU threads for torch.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_command(preset_name: str, work_dir: Path | None, out: Path | None, threads: int, quiet: bool) -> None:
    """Train the 5-fold cross-validated ensemble and write it with its model card.

    Rerunning with the same --work-dir resumes: cached data and finished folds are reused and
    an interrupted fold continues from its last epoch checkpoint.
    """
    from training.presets import get_preset
    from training.run import run_training

    preset = get_preset(preset_name)
    work_dir = work_dir or Path("runs") / preset.name
    out = out or work_dir / "ensemble.safetensors"
    torch.set_num_threads(threads)
    _log_to(work_dir / "train.log")
    command = f"ivuscal train --preset {shlex.quote(preset.name)}"
    for flag, value in (("--work-dir", work_dir), ("--out", out), ("--threads", threads)):
        command += f" {flag} {shlex.quote(str(value))}"
    ensemble = run_training(preset, work_dir, out, quiet=quiet, command=command)
    metrics = ensemble.card["metrics"]
    click.echo(f"wrote {out} ({ensemble.model_id}) in {ensemble.card['time_seconds']['total']:.0f} s")
    for label, block in (("out-of-fold", metrics["out_of_fold"]), ("test ensemble", metrics["test"]["ensemble"])):
        raw, filt = block["raw"], block["filtered"]
        click.echo(
            f"{label}: accuracy {raw['accuracy']:.4f} -> {filt['accuracy']:.4f}, "
            f"dice {raw['dice']:.4f} -> {filt['dice']:.4f} (raw -> filtered, window {metrics['window']})"
        )
    study = metrics["study_window"]
    click.echo(
        f"at the study's window {study['window']}: out-of-fold dice {study['out_of_fold']['filtered']['dice']:.4f}, "
        f"test ensemble dice {study['test']['ensemble']['filtered']['dice']:.4f}"
    )


@click.command("generalise")
@click.option("--hold-out", "style", required=True,
              help="Appearance to leave out of training and test on: rotational40, rotational60, phased20 or stress.")
@click.option("--preset", "preset_name", default="small", show_default=True, help="Training recipe to derive from.")
@click.option("--augmentation", type=click.Choice(["default", "basic"]), default=None,
              help="Override the preset's augmentation (basic: the pre-issue-12 set, for comparisons).")
@click.option("--hard-negative-share", type=click.FloatRange(0.0, 2.0), default=None,
              help="Override the preset's hard-negative oversampling (0: none).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Data, checkpoints, log and ensemble. [default: runs/<preset>-without-<style>]")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True, help="CPU threads for torch.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def generalise_command(style: str, preset_name: str, augmentation: str | None, hard_negative_share: float | None,
                       work_dir: Path | None, threads: int, quiet: bool) -> None:
    """Leave-one-style-out: train without one device style (or on standard consoles only for
    "stress"), test on that style alone; compares out-of-fold (seen styles) with the held-out test."""
    from dataclasses import replace

    from training.presets import get_preset, held_out_style
    from training.run import run_training

    preset = held_out_style(get_preset(preset_name), style)
    overrides = {k: v for k, v in (("augmentation", augmentation), ("hard_negative_share", hard_negative_share))
                 if v is not None}
    if overrides:
        preset = replace(preset, train=replace(preset.train, **overrides))
    work_dir = work_dir or Path("runs") / preset.name
    out = work_dir / "ensemble.safetensors"
    torch.set_num_threads(threads)
    _log_to(work_dir / "train.log")
    command = (f"ivuscal generalise --hold-out {shlex.quote(style)} --preset {shlex.quote(preset_name)} "
               f"--work-dir {shlex.quote(str(work_dir))}"
               + "".join(f" --{k.replace('_', '-')} {v}" for k, v in overrides.items()))
    ensemble = run_training(preset, work_dir, out, quiet=quiet, command=command)
    metrics = ensemble.card["metrics"]
    click.echo(f"wrote {out} ({ensemble.model_id})")
    for label, block in (("seen styles (out-of-fold)", metrics["out_of_fold"]),
                         (f"held-out {style} (test)", metrics["test"]["ensemble"])):
        f = block["filtered"]
        click.echo(f"{label}: dice {f['dice']:.4f}, specificity {f['specificity']:.4f}, "
                   f"sensitivity {f['sensitivity']:.4f}, arc error {f['arc_error_deg']:.1f} deg (filtered)")


@click.command("evaluate")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="Ensemble weights. [default: the shipped model]")
@click.option("--cohort", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="A simulator cohort directory (DICOM + truth + manifest).")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Polar cache to read, or to build from --cohort.")
@click.option("--window-frames", type=int, default=DEFAULT_WINDOW[0], show_default=True)
@click.option("--window-alines", type=int, default=DEFAULT_WINDOW[1], show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the full report (per pullback too) as JSON.")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate_command(
    model_path: Path | None,
    cohort: Path | None,
    cache_dir: Path | None,
    window_frames: int,
    window_alines: int,
    out: Path | None,
    threads: int,
    quiet: bool,
) -> None:
    """Score each member and the ensemble, before and after the filter, against truth.

    Metrics per A-line (accuracy, Dice, sensitivity, specificity) pooled over all frames, and
    the mean per-frame arc error in degrees; per pullback in the --out report.
    """
    from engine.model.weights import load_ensemble
    from training.cache import PolarCache
    from training.cohort import cache_cohort_dir
    from training.confounders import confounder_table, format_confounders, worst_pullbacks
    from training.evaluate import format_report, member_predictions, score_predictions
    from training.reliability import flag_figures, format_flag_figures, wrong_frames

    if cohort is None and cache_dir is None:
        raise click.UsageError("give --cohort DIR or --cache DIR")
    for name, size in (("--window-frames", window_frames), ("--window-alines", window_alines)):
        if size < 1 or size % 2 == 0:
            raise InputError(f"{name} must be a positive odd number, got {size}", source="evaluate")
    torch.set_num_threads(threads)
    ensemble = load_ensemble(model_path)
    if cohort is not None:
        cache = cache_cohort_dir(cohort, cache_dir or Path("runs") / "eval-cache" / cohort.name, ensemble.spec, quiet)
    else:
        cache = PolarCache(cache_dir)
    if cache.spec != ensemble.spec:
        raise InputError(
            f"cache was sampled for {cache.spec}, the model expects {ensemble.spec}", source=str(cache.root)
        )
    window = (window_frames, window_alines)
    ensemble_maps: dict = {}
    spreads: dict = {}
    kept = _keep_ensemble(member_predictions(ensemble.models, cache), ensemble_maps, spreads)
    report = score_predictions(kept, cache, window)
    report["model"] = ensemble.model_id
    if cohort is not None:
        report["confounders"] = confounder_table(cache, cohort, ensemble_maps, window)
    report["worst_pullbacks"] = worst_pullbacks(report, cache, cohort)
    click.echo(
        f"{ensemble.model_id} on {len(cache)} pullbacks, window {window_frames} frames x {window_alines} A-lines"
    )
    click.echo(format_report(report))
    click.echo("false-positive rate per confounder (share of its non-calcium A-lines called calcium, ensemble):")
    click.echo(format_confounders(report.get("confounders", {}), report["worst_pullbacks"]))
    if ensemble.reliability is not None:
        rows = [(cache.pullbacks[i].source, spreads[i], wrong_frames(prob, cache.labels(i), window))
                for i, prob in ensemble_maps.items()]
        report["reliability"] = flag_figures(rows, ensemble.reliability)
        click.echo(format_flag_figures(report["reliability"]))
    if out is not None:
        write_json(out, report, indent=1)


def _keep_ensemble(items, store: dict, spreads: dict):
    """Pass (pullback, probs) items through, keeping each ensemble map in `store` and the
    members' spread (frames, A) in `spreads`."""
    for index, probs in items:
        store[index] = probs["ensemble"]
        spreads[index] = member_spread(probs)
        yield index, probs


def _log_to(path: Path) -> None:
    """Training progress to `path` (and to stderr at INFO)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
