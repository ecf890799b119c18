"""`ivuscal batch SOURCE... --out DIR`: analyse an archive of pullbacks on a Dask cluster (docs/batch.md).

Exit status (docs/conventions.md): 0 when every input was analysed (or its verified report was
already there), 2 when some inputs are not analysable pullbacks (each named on stderr and in
DIR/failures.csv; the others are analysed), 1 when some input failed inside ivuscal or was lost
with its worker more often than allowed. A rerun resumes: verified reports are skipped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from engine.batch import cohort
from engine.batch.cluster import ClusterRequest, connect
from engine.batch.layout import remove_stale_temporaries, report_dir
from engine.batch.runner import run_batch
from engine.batch.sources import expand_sources
from engine.batch.task import BatchConfig, Outcome, Status
from engine.commands.analyze import pipeline_options
from engine.dicom import CalibrationOverrides
from engine.dicom.cli_options import calibration_options
from engine.errors import InputError, InternalError
from engine.model.weights import file_sha256
from engine.pipeline import PipelineSettings
from engine.runtimes.cli_options import runtime_options


def _uses_gpu(backend: str, device: str | None) -> bool:
    """Whether the tasks infer on a GPU (and so each needs a worker's GPU resource)."""
    if device is not None:
        return device.startswith("cuda")
    if backend == "tensorrt":
        return True
    if backend == "auto":
        from engine.runtimes import auto_backend

        return auto_backend() == "tensorrt"
    return False


def _model_sha256(model: Path | None) -> str:
    from engine.model.weights import DEFAULT_WEIGHTS

    path = model or DEFAULT_WEIGHTS
    if not path.is_file():
        raise InputError("model file not found", source=str(path))
    return file_sha256(path)


def write_cohort_summary(out_dir: Path, outcomes: list[Outcome], window: tuple[int, int]) -> dict[str, Any]:
    """cohort.csv/.parquet, failures.csv, cohort_distributions.png and (with truth) evaluation.json."""
    rows = [o.row for o in outcomes if o.row is not None]
    files = cohort.write_table(out_dir, rows)
    files.append(cohort.write_failures(out_dir, [(o.source, o.reason) for o in outcomes if o.status is Status.FAILED]))
    cohort.plot_distributions(out_dir / "cohort_distributions.png", rows)
    files.append(out_dir / "cohort_distributions.png")
    with_truth = [(o.row["pullback"], report_dir(out_dir, Path(o.source)), Path(o.source))
                  for o in outcomes if o.row is not None and o.row["truth"]]
    evaluation = cohort.evaluate(with_truth, window) if with_truth else None
    if evaluation is not None:
        files.append(cohort.write_evaluation(out_dir, evaluation))
    return {"files": [str(f) for f in files], "evaluation": evaluation}


@click.command(name="batch")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output folder: one report folder per pullback and the cohort summary.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Use this running Dask cluster instead of starting a local one.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Workers of the local cluster [default: one per core; one per GPU for GPU work].")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Times a pullback is rerun after its worker died (local cluster).")
@click.option("--truth/--no-truth", "use_truth", default=True, show_default=True,
              help="Use the simulator truth beside an input when present (report overlay and pooled evaluation).")
@click.option("--dashboard", is_flag=True, help="Start (or show) Dask's dashboard and print its link.")
@click.option("--quiet", is_flag=True, help="No progress bar and no closing summary (failures are still reported).")
@pipeline_options
@calibration_options
@runtime_options
def command(
    sources: tuple[Path, ...],
    out_dir: Path,
    scheduler: str | None,
    workers: int | None,
    retries: int,
    use_truth: bool,
    dashboard: bool,
    quiet: bool,
    settings: PipelineSettings,
    chunk_frames: int,
    overrides: CalibrationOverrides | None,
    backend: str,
    model: Path | None,
    device: str | None,
    precision: str | None,
    threads: int | None,
) -> None:
    """Analyse every pullback in SOURCE... (DICOM files, folders, lists of paths) into --out, on Dask.

    Each pullback is analysed as `ivuscal analyze` would, by one worker with one inference thread
    (--threads sets it per worker). A rerun skips the pullbacks whose reports verify. Exit status:
    0 all analysed, 2 some inputs not analysable (listed in failures.csv), 1 internal failures.
    """
    inputs = expand_sources(sources)
    if not inputs:
        raise InputError("no DICOM files found in the sources given", source=" ".join(map(str, sources)))
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    config = BatchConfig(
        settings=settings, chunk_frames=chunk_frames, overrides=overrides, backend=backend,
        model=model.absolute() if model else None, model_sha256=_model_sha256(model),
        device=device, precision=precision, threads=threads or 1, use_truth=use_truth,
    )
    gpu = _uses_gpu(backend, device)
    request = ClusterRequest(scheduler=scheduler, workers=workers, gpu=gpu, dashboard=dashboard, retries=retries)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with connect(request) as client:
        n_workers = len(client.scheduler_info()["workers"])
        if dashboard and not quiet:
            click.echo(f"dashboard: {client.dashboard_link}", err=True)
        outcomes = run_batch(client, inputs, out_dir, config, gpu=gpu, quiet=quiet)
    elapsed = time.perf_counter() - started
    summary = write_cohort_summary(out_dir, outcomes, (settings.window_frames, settings.window_alines))
    counts = {str(status): sum(o.status is status for o in outcomes) for status in Status}
    record = {
        "inputs": len(inputs), **counts, "wall_s": round(elapsed, 3), "workers": n_workers, "gpu": gpu,
        "scheduler": scheduler or "local", "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
        "settings": settings.to_dict(), "fingerprint": config.fingerprint(), "files": summary["files"],
    }
    (out_dir / "batch.json").write_text(json.dumps(record, indent=1) + "\n")
    if not quiet:
        click.echo(
            f"{out_dir}: {counts['analysed']} analysed, {counts['skipped']} already done, {counts['failed']} failed "
            f"of {len(inputs)} inputs in {elapsed:.1f} s on {n_workers} worker(s); "
            f"cohort table {out_dir / 'cohort.csv'}"
        )
        if summary["evaluation"] is not None:
            from training.evaluate import format_report

            click.echo(format_report(summary["evaluation"]))
    _exit_status(outcomes, out_dir)


def _exit_status(outcomes: list[Outcome], out_dir: Path) -> None:
    """Raise for the exit status of the module docstring (nothing to do when all were analysed)."""
    failed = [o for o in outcomes if o.status is Status.FAILED]
    if not failed:
        return
    where = out_dir / "failures.csv"
    internal = sum(o.internal for o in failed)
    if internal:
        raise InternalError(f"{internal} of {len(outcomes)} inputs failed inside ivuscal (listed in {where})")
    raise InputError(f"{len(failed)} of {len(outcomes)} inputs are not analysable pullbacks (listed in {where})",
                     source=str(out_dir))
