"""`ivuscal bench`: latency and throughput benchmarks, written as JSON, Markdown and PNG plots.

`ivuscal bench` alone runs every scenario with its defaults; `ivuscal bench <scenario>` runs
one. Common options (`--out`, `--cache-dir`, `--weights`, `--quiet`) are accepted before or
after the scenario name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import click

from bench.machine import load_average, machine_info
from bench.report import write_report
from bench.result import ScenarioResult
from engine.cache_paths import cache_dir

DEFAULT_OUT = Path("bench-results")
DEFAULT_CACHE = cache_dir() / "bench"


def common_options(func):
    """--out, --cache-dir, --weights and --quiet; a value given after the scenario name wins."""

    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help=f"Results folder [default: {DEFAULT_OUT}].")
    @click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help=f"Generated pullbacks and stand-in weights [default: {DEFAULT_CACHE}].")
    @click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                  help="Ensemble weights (default: the trained default, else a random stand-in).")
    @click.option("--quiet", is_flag=True, default=None, help="No progress output.")
    @functools.wraps(func)
    def wrapper(*args, out, cache_dir, weights, quiet, **kwargs):
        ctx = click.get_current_context()
        parent = (ctx.parent.params if ctx.parent is not None else {}) or {}
        options = {
            "out": out or parent.get("out") or DEFAULT_OUT,
            "cache_dir": cache_dir or parent.get("cache_dir") or DEFAULT_CACHE,
            "weights": weights or parent.get("weights"),
            "quiet": bool(quiet or parent.get("quiet")),
            "machine": machine_info(),  # at the start, so its load average is the one before the run
        }
        return func(*args, options=options, **kwargs)

    return wrapper


def with_load(run: Callable[..., ScenarioResult], *args, **kwargs) -> ScenarioResult:
    """Run one scenario and record the load average just before and just after it."""
    before = load_average()
    result = run(*args, **kwargs)
    result.settings["load_avg_before"] = before
    result.settings["load_avg_after"] = load_average()
    return result


def finish(results: list[ScenarioResult], options: dict) -> None:
    """Write the report and say where it went, with one line per skipped scenario."""
    written = write_report(options["out"], options["machine"], results)
    for result in results:
        if result.skipped:
            click.echo(f"skipped {result.name}: {result.skipped}", err=True)
    if not options["quiet"]:
        click.echo(written["markdown"].read_text())
    click.echo(f"results: {written['json']} and {written['markdown']}", err=True)


@click.group(name="bench", invoke_without_command=True)
@common_options
@click.pass_context
def command(ctx: click.Context, options: dict) -> None:
    """Latency and throughput benchmarks (every scenario when no scenario is named)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(all_command)


@command.command(name="filter")
@common_options
@click.option("--frames", type=click.IntRange(min=2), default=300, show_default=True,
              help="Probability rows pushed per window size.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy"]), default="numpy", show_default=True,
              help="Array namespace (cupy: GPU).")
@click.option("--window", "windows", type=(int, int), multiple=True, metavar="FRAMES ALINES",
              help="Window sizes to time (repeatable) [default: 3 11, 7 31, 13 61, 25 121].")
@click.option("--recompute-seconds", type=click.FloatRange(min=0.0), default=4.0, show_default=True,
              help="Time budget of the recomputation per window.")
def filter_command(options: dict, frames: int, xp_name: str, windows: tuple[tuple[int, int], ...],
                   recompute_seconds: float) -> None:
    """Filter alone: ring buffer against per-frame recomputation, across window sizes."""
    from bench import filter_speed

    result = with_load(filter_speed.run, frames=frames, windows=windows or filter_speed.WINDOWS, xp_name=xp_name,
                       recompute_seconds=recompute_seconds)
    finish([result], options)


def backend_options(func):
    """--backend, --device and --threads of our runtime (engine.runtimes.create_runtime)."""
    func = click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="CPU inference threads (backend default: physical cores).")(func)
    func = click.option("--device", default=None,
                        help="Device of the backend: cpu, cuda, cuda:N (backend default).")(func)
    return click.option("--backend", default="auto", show_default=True,
                        help="Our inference backend (auto: TensorRT on a GPU, else ONNX Runtime).")(func)


def pullback_option(func):
    """--pullback: a DICOM file in place of the generated pullback."""
    return click.option(
        "--pullback", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
        help="A DICOM pullback to use instead of the generated one.",
    )(func)


def _setup(options: dict, backend: str | None, device: str | None = None, threads: int | None = None):
    """(bench model, our runtime or None) for the options."""
    from bench.model import bench_model
    from engine.runtimes import create_runtime

    model = bench_model(options["cache_dir"], options["weights"])
    runtime = create_runtime(backend, model=model.ensemble, device=device, threads=threads) if backend else None
    return model, runtime


def _pullback(options: dict, given: Path | None, frames: int, image_size: int) -> Path:
    from bench.pullback import cached_pullback

    return given or cached_pullback(options["cache_dir"], frames, image_size, quiet=options["quiet"])


@command.command(name="offline")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=16), default=3000, show_default=True, help="Frames of the pullback.")
@click.option("--baseline-frames", type=click.IntRange(min=16), default=300, show_default=True,
              help="Frames the naive baseline runs.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True,
              help="Size of generated frames (pixels).")
@click.option("--chunk", "chunk_frames", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Frames decoded and inferred at a time.")
@click.option("--window", type=(int, int), default=None, metavar="FRAMES ALINES",
              help="Filter window of both pipelines, ours and the baseline's [default: the engine's, 3 15; "
                   "the study's: 13 61].")
def offline_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None,
                    frames: int, baseline_frames: int, image_size: int, chunk_frames: int,
                    window: tuple[int, int] | None) -> None:
    """Offline pipeline stage by stage and composed, against the naive baseline."""
    finish([with_load(_offline, options, backend, device, threads, pullback, frames, baseline_frames, image_size,
                      chunk_frames, window)], options)


def _offline(
    options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None,
    frames: int, baseline_frames: int, image_size: int, chunk_frames: int, window: tuple[int, int] | None = None,
) -> ScenarioResult:
    from bench import offline
    from engine.pipeline import PipelineSettings

    settings = PipelineSettings(*window) if window else PipelineSettings()
    path = _pullback(options, pullback, frames, image_size)
    model, runtime = _setup(options, backend, device, threads)
    return offline.run(path, runtime, model.ensemble, model.description, frames, baseline_frames, chunk_frames,
                       settings=settings, quiet=options["quiet"])


@command.command(name="dicom-out")
@common_options
@click.option("--frames", type=click.IntRange(min=1), default=3000, show_default=True, help="Frames of the pullback.")
@click.option("--fraction", "fractions", type=click.FloatRange(0.0, 1.0), multiple=True,
              help="Calcified fraction of the frames (repeatable) [default: 0.1, 0.3, 1.0].")
def dicom_out_command(options: dict, frames: int, fractions: tuple[float, ...]) -> None:
    """DICOM outputs: SR and presentation state build time and size for a long pullback."""
    from bench import dicom_outputs

    finish([with_load(dicom_outputs.run, frames=frames, fractions=fractions or dicom_outputs.FRACTIONS)], options)


@command.command(name="runtimes")
@common_options
@click.option("--backend", "backends", multiple=True, metavar="NAME[:DEVICE]",
              help="Backends to compare (repeatable) "
                   "[default: onnxruntime:cpu, torch:cpu, and tensorrt:cuda, torch:cuda on a GPU].")
@click.option("--batch", "batches", type=click.IntRange(min=1), multiple=True,
              help="Batch sizes (repeatable) [default: 1, 8, 32].")
@click.option("--frames", type=click.IntRange(min=1), default=64, show_default=True,
              help="Frames timed per backend and batch size.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of the CPU backends and the eager baseline (default: each one's own).")
@click.option("--levers", is_flag=True,
              help="Add batch-1 rows for the CPU speed levers (graph layout, threads, speed architecture).")
def runtimes_command(
    options: dict, backends: tuple[str, ...], batches: tuple[int, ...], frames: int, threads: int | None, levers: bool
) -> None:
    """Inference runtimes on the same frames, batch 1 and batched, against PyTorch eager."""
    finish([with_load(_runtimes, options, backends, batches, frames, threads, levers)], options)


def _runtimes(
    options: dict, backends: tuple[str, ...], batches: tuple[int, ...], frames: int, threads: int | None = None,
    levers: bool = False,
) -> ScenarioResult:
    from bench import runtime_compare

    model, _ = _setup(options, None)
    pairs = tuple((name, device or None) for name, _, device in (b.partition(":") for b in backends)) or None
    return runtime_compare.run(model.ensemble, model.description, pairs, batches or (1, 8, 32), frames, threads,
                               levers)


@command.command(name="soak")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=1), default=108_000, show_default=True,
              help="Frames pushed (108,000 = an hour at 30 fps).")
@click.option("--pullback-frames", type=click.IntRange(min=16), default=3000, show_default=True,
              help="Frames per pullback (begin/end each time).")
@click.option("--batch", type=click.IntRange(1, 256), default=16, show_default=True, help="Frames per pipeline call.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True,
              help="Size of generated frames (pixels).")
def soak_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None,
                 frames: int, pullback_frames: int, batch: int, image_size: int) -> None:
    """Soak: frames at the maximum rate through the engine; memory over time must stay flat."""
    from bench import soak

    path = _pullback(options, pullback, 256, image_size)
    model, runtime = _setup(options, backend, device, threads)
    result = with_load(soak.run, path, runtime, model.description, frames, pullback_frames, batch,
                       quiet=options["quiet"])
    finish([result], options)


@command.command(name="stream")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=16), default=300, show_default=True,
              help="Frames of the replayed pullback.")
@click.option("--rate", "rates", multiple=True, metavar="FPS|max",
              help="Replay rates (repeatable) [default: 30, 60, max].")
@click.option("--max-batch", type=click.IntRange(1, 256), default=8, show_default=True,
              help="The engine's --max-batch.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True,
              help="Size of generated frames (pixels).")
@click.option("--hog", is_flag=True,
              help="Replay 30 and 60 fps again with a CPU hog busy on one core beside the engine.")
def stream_command(
    options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None, frames: int,
    rates: tuple[str, ...], max_batch: int, image_size: int, hog: bool,
) -> None:
    """End to end over ZeroMQ: ivuscal serve in a child process, replayed at 30/60 fps and max."""
    finish([with_load(_stream, options, backend, threads, pullback, frames, rates, max_batch, image_size, hog, device)],
           options)


def _stream(
    options: dict, backend: str, threads: int | None, pullback: Path | None,
    frames: int, rates: tuple[str, ...], max_batch: int, image_size: int, hog: bool = False, device: str | None = None,
) -> ScenarioResult:
    from bench import end_to_end
    from tools.replay import parse_fps

    parsed = tuple(parse_fps(r) for r in rates) or end_to_end.RATES
    if any(r == 0.0 for r in parsed):
        raise click.BadParameter("give a number of frames per second or 'max'", param_hint="--rate")
    path = _pullback(options, pullback, frames, image_size)
    model, _ = _setup(options, None)
    hog_rates = end_to_end.HOG_RATES if hog else ()
    return end_to_end.run(path, model.path, backend, model.description, parsed, max_batch, threads=threads,
                          hog_rates=hog_rates, device=device)


@command.command(name="streams")
@common_options
@backend_options
@click.option("--ids", "ids", type=click.IntRange(min=1), multiple=True,
              help="Marks at which RSS is read (repeatable) [default: 1000, 10000].")
@click.option("--wave", type=click.IntRange(1, 10_000), default=32, show_default=True,
              help="Pullbacks open at once (the engine's --max-streams).")
@click.option("--frames-per-stream", type=click.IntRange(0, 1000), default=1, show_default=True,
              help="Frames sent on each stream before its end.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True,
              help="Size of the frames (pixels).")
def streams_command(options: dict, backend: str, device: str | None, threads: int | None, ids: tuple[int, ...],
                    wave: int, frames_per_stream: int, image_size: int) -> None:
    """Live engine memory per open pullback and over 1,000 and 10,000 stream ids opened and ended."""
    from bench import streams

    model, runtime = _setup(options, backend, device, threads)
    marks = ids or (1000, 10_000)
    result = with_load(streams.run, runtime, model.description, marks, wave, frames_per_stream, image_size,
                       quiet=options["quiet"])
    finish([result], options)


@command.command(name="batch")
@common_options
@click.option("--workers", "worker_counts", type=click.IntRange(min=1), multiple=True,
              help="Local worker counts to time (repeatable) [default: 1, 2].")
@click.option("--pullbacks", type=click.IntRange(min=1), default=8, show_default=True,
              help="Pullbacks per timed batch.")
@click.option("--frames", type=click.IntRange(min=16), default=60, show_default=True, help="Frames per pullback.")
@click.option("--image-size", type=click.IntRange(min=128), default=128, show_default=True,
              help="Size of generated frames (pixels; the simulator's minimum is 128).")
@click.option("--noop-tasks", type=click.IntRange(min=1), default=200, show_default=True,
              help="Empty tasks timed for the scheduler's overhead.")
def batch_command(
    options: dict, worker_counts: tuple[int, ...], pullbacks: int, frames: int, image_size: int, noop_tasks: int
) -> None:
    """ivuscal batch on a local Dask cluster: throughput and efficiency per worker count, scheduler overhead."""
    from bench import batch_scaling

    result = with_load(batch_scaling.run, options["cache_dir"], options["weights"], worker_counts or (1, 2),
                       pullbacks, frames, image_size, noop_tasks)
    finish([result], options)


@command.command(name="view")
@common_options
@pullback_option
@click.option("--backend", default="auto", show_default=True, help="The engine's inference backend.")
@click.option("--frames", type=click.IntRange(min=16), default=300, show_default=True, help="Frames replayed.")
@click.option("--fps", type=click.FloatRange(1, 120), default=30.0, show_default=True, help="Replay rate.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True, help="Frame size (pixels).")
def view_command(options: dict, pullback: Path | None, backend: str, frames: int, fps: float, image_size: int) -> None:
    """The live view's displayed frame rate in headless Chromium during a replay (goal >= 25 at 30 frames/s)."""
    from bench import view_fps

    path = _pullback(options, pullback, frames, image_size)
    model, _ = _setup(options, None)
    finish([with_load(view_fps.run, path, model.path, backend, model.description, fps)], options)


@command.command(name="all")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=64), default=3000, show_default=True,
              help="Frames of the offline pullback.")
@click.option("--baseline-frames", type=click.IntRange(min=16), default=300, show_default=True,
              help="Frames the naive baseline runs.")
@click.option("--stream-frames", type=click.IntRange(min=16), default=300, show_default=True,
              help="Frames replayed per rate over ZeroMQ.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True,
              help="Size of generated frames (pixels).")
def all_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None,
                frames: int, baseline_frames: int, stream_frames: int, image_size: int) -> None:
    """Every scenario (the soak excepted: `ivuscal bench soak`), with the CPU-hog stream runs and the speed levers.

    This is the one command that regenerates the tables of docs/benchmarks.md:
    `ivuscal bench all --threads 1 --out docs/img/bench`.
    """
    from bench import filter_speed
    from bench.headline import headline

    results = [
        with_load(_stream, options, backend, threads, pullback, stream_frames, (), 8, image_size, True),
        with_load(_offline, options, backend, device, threads, pullback, frames, baseline_frames, image_size, 32),
        with_load(_runtimes, options, (), (), 64, threads, True),
        with_load(filter_speed.run),
    ]
    summary = headline(results)
    finish(([summary] if summary else []) + results, options)
