"""`ivuscal bench batch`: how `ivuscal batch` scales with Dask workers, and what the scheduler costs per task.

The cohort is one simulated pullback copied into `pullbacks` files (identical work per task,
so the only variable is the number of workers). For each worker count a fresh LocalCluster
(processes, one thread each, as `ivuscal batch` starts it) first creates its runtimes (untimed:
a fixed cost per worker, reported as `warm_up_s`), then analyses the cohort into a fresh folder.
Efficiency at W workers = throughput(W) / (W x throughput(1)). The scheduler's per-task
overhead is measured with `noop_tasks` empty tasks on one worker (submit to result, per task).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster, wait

from bench.pullback import cached_pullback
from bench.result import ScenarioResult
from engine.batch.cluster import LOOPBACK
from engine.batch.runner import run_batch
from engine.batch.task import BatchConfig, Status, _runtime
from engine.pipeline import PipelineSettings

NAME = "batch"
TITLE = "Archive analysis on Dask: throughput with 1 and 2 workers, scheduler overhead per task"


def _warm(config: BatchConfig) -> None:
    """Create this worker's runtime (what a worker's first task would otherwise pay)."""
    _runtime(config)


def _noop() -> None:
    return None


def cohort(cache_dir: Path, pullbacks: int, frames: int, image_size: int) -> list[Path]:
    """`pullbacks` copies of one cached simulated pullback, each in its own file."""
    source = cached_pullback(cache_dir, frames, image_size)
    folder = Path(cache_dir) / "batch-cohort" / f"{frames}f-{image_size}px"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"p{i:03d}.dcm" for i in range(pullbacks)]
    for path in paths:
        if not path.is_file() or path.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, path)
    return paths


def per_task_overhead_s(client: Client, n_tasks: int) -> float:
    """Wall time per empty task, submitted together and gathered (scheduler + transfer, no work)."""
    client.submit(_noop, pure=False).result()
    started = time.perf_counter()
    futures = [client.submit(_noop, pure=False) for _ in range(n_tasks)]
    wait(futures)
    return (time.perf_counter() - started) / n_tasks


def run(
    cache_dir: Path,
    model: Path | None,
    worker_counts: tuple[int, ...] = (1, 2),
    pullbacks: int = 8,
    frames: int = 60,
    image_size: int = 128,
    noop_tasks: int = 200,
) -> ScenarioResult:
    """Time `ivuscal batch` (run_batch on a fresh LocalCluster) per worker count; see the module docstring."""
    from engine.batch.cli import _model_sha256

    inputs = cohort(cache_dir, pullbacks, frames, image_size)
    config = BatchConfig(settings=PipelineSettings(), model=model, model_sha256=_model_sha256(model), threads=1,
                         use_truth=False)
    settings = {"pullbacks": pullbacks, "frames": frames, "image_size": image_size, "threads_per_worker": 1,
                "noop_tasks": noop_tasks, "worker_counts": list(worker_counts)}
    result = ScenarioResult(NAME, TITLE, settings)
    base_rate = None
    for workers in worker_counts:
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=LOOPBACK,
                         dashboard_address=None) as cluster,
            Client(cluster) as client,
            tempfile.TemporaryDirectory(prefix="ivuscal-bench-batch-") as out,
        ):
            started = time.perf_counter()
            client.run(_warm, config)
            warm_up_s = time.perf_counter() - started
            started = time.perf_counter()
            outcomes = run_batch(client, inputs, Path(out), config, quiet=True)
            wall_s = time.perf_counter() - started
            overhead_s = per_task_overhead_s(client, noop_tasks) if workers == 1 else None
        failed = [o.reason for o in outcomes if o.status is not Status.ANALYSED]
        if failed:
            raise RuntimeError(f"bench batch: {len(failed)} pullbacks not analysed: {failed[0]}")
        rate = pullbacks / wall_s
        base_rate = base_rate or (rate if workers == 1 else None)
        task_s = sum(o.seconds for o in outcomes) / len(outcomes)
        result.rows.append({
            "workers": workers,
            "wall_s": round(wall_s, 2),
            "pullbacks_per_s": round(rate, 3),
            "frames_per_s": round(rate * frames, 1),
            "mean_task_s": round(task_s, 3),
            "efficiency": round(rate / (workers * base_rate), 3) if base_rate else None,
            "warm_up_s": round(warm_up_s, 2),
        })
        if overhead_s is not None:
            result.summary["scheduler_overhead_ms_per_task"] = round(overhead_s * 1000, 3)
            result.summary["pullback_s_1_worker"] = round(task_s, 3)
            result.summary["frame_ms_1_worker"] = round(task_s / frames * 1000, 3)
    if len(result.rows) > 1 and result.rows[-1]["efficiency"] is not None:
        result.summary[f"efficiency_{result.rows[-1]['workers']}_workers"] = result.rows[-1]["efficiency"]
    if "scheduler_overhead_ms_per_task" in result.summary:
        result.notes.append(
            f"Scheduler overhead: {result.summary['scheduler_overhead_ms_per_task']} ms per task "
            f"({noop_tasks} empty tasks on 1 worker), against {result.summary['pullback_s_1_worker']} s per pullback."
        )
    result.notes.append(
        "Throughput counts the analysis only: cluster start and each worker's runtime creation are excluded "
        "(warm_up_s; paid once per worker per batch). The machine's load average is recorded beside the figures."
    )
    return result
