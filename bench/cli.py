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

DEFAULT_OUT = Path("bench-results")
DEFAULT_CACHE = Path.home() / ".cache" / "ivuscal-bench"


def common_options(func):
    """--out, --cache-dir, --weights and --quiet; a value given after the scenario name wins."""

    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help=f"Results folder [default: {DEFAULT_OUT}].")
    @click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=f"Generated pullbacks and stand-in weights [default: {DEFAULT_CACHE}].")
    @click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Ensemble weights (default: the trained default, else a random stand-in).")
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
@click.option("--frames", type=click.IntRange(min=2), default=300, show_default=True, help="Probability rows pushed per window size.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy"]), default="numpy", show_default=True, help="Array namespace (cupy: GPU).")
@click.option("--window", "windows", type=(int, int), multiple=True, metavar="FRAMES ALINES", help="Window sizes to time (repeatable) [default: 3 11, 7 31, 13 61, 25 121].")
@click.option("--recompute-seconds", type=click.FloatRange(min=0.0), default=4.0, show_default=True, help="Time budget of the recomputation per window.")
def filter_command(options: dict, frames: int, xp_name: str, windows: tuple[tuple[int, int], ...], recompute_seconds: float) -> None:
    """Filter alone: ring buffer against per-frame recomputation, across window sizes."""
    from bench import filter_speed  # noqa: PLC0415

    result = with_load(filter_speed.run, frames=frames, windows=windows or filter_speed.WINDOWS, xp_name=xp_name, recompute_seconds=recompute_seconds)
    finish([result], options)


def backend_options(func):
    """--backend, --device and --threads of our runtime (engine.runtimes.create_runtime)."""
    func = click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU inference threads (backend default: physical cores).")(func)
    func = click.option("--device", default=None, help="Device of the backend: cpu, cuda, cuda:N (backend default).")(func)
    return click.option("--backend", default="auto", show_default=True, help="Our inference backend (auto: TensorRT on a GPU, else ONNX Runtime).")(func)


def pullback_option(func):
    """--pullback: a DICOM file in place of the generated pullback."""
    return click.option(
        "--pullback", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
        help="A DICOM pullback to use instead of the generated one.",
    )(func)


def _setup(options: dict, backend: str | None, device: str | None = None, threads: int | None = None):
    """(bench model, our runtime or None) for the options."""
    from bench.model import bench_model  # noqa: PLC0415
    from engine.runtimes import create_runtime  # noqa: PLC0415

    model = bench_model(options["cache_dir"], options["weights"])
    runtime = create_runtime(backend, model=model.ensemble, device=device, threads=threads) if backend else None
    return model, runtime


def _pullback(options: dict, given: Path | None, frames: int, image_size: int) -> Path:
    from bench.pullback import cached_pullback  # noqa: PLC0415

    return given or cached_pullback(options["cache_dir"], frames, image_size, quiet=options["quiet"])


@command.command(name="offline")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=16), default=3000, show_default=True, help="Frames of the pullback.")
@click.option("--baseline-frames", type=click.IntRange(min=16), default=300, show_default=True, help="Frames the naive baseline runs.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True, help="Size of generated frames (pixels).")
@click.option("--chunk", "chunk_frames", type=click.IntRange(1, 1024), default=32, show_default=True, help="Frames decoded and inferred at a time.")
def offline_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None, frames: int, baseline_frames: int, image_size: int, chunk_frames: int) -> None:
    """Offline pipeline stage by stage and composed, against the naive baseline."""
    finish([with_load(_offline, options, backend, device, threads, pullback, frames, baseline_frames, image_size, chunk_frames)], options)


def _offline(
    options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None,
    frames: int, baseline_frames: int, image_size: int, chunk_frames: int,
) -> ScenarioResult:
    from bench import offline  # noqa: PLC0415

    path = _pullback(options, pullback, frames, image_size)
    model, runtime = _setup(options, backend, device, threads)
    return offline.run(path, runtime, model.ensemble, model.description, frames, baseline_frames, chunk_frames, quiet=options["quiet"])


@command.command(name="runtimes")
@common_options
@click.option("--backend", "backends", multiple=True, metavar="NAME[:DEVICE]", help="Backends to compare (repeatable) [default: onnxruntime:cpu, torch:cpu, and tensorrt:cuda, torch:cuda on a GPU].")
@click.option("--batch", "batches", type=click.IntRange(min=1), multiple=True, help="Batch sizes (repeatable) [default: 1, 8, 32].")
@click.option("--frames", type=click.IntRange(min=1), default=64, show_default=True, help="Frames timed per backend and batch size.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads of the CPU backends and the eager baseline (default: each one's own).")
def runtimes_command(options: dict, backends: tuple[str, ...], batches: tuple[int, ...], frames: int, threads: int | None) -> None:
    """Inference runtimes on the same frames, batch 1 and batched, against PyTorch eager."""
    finish([with_load(_runtimes, options, backends, batches, frames, threads)], options)


def _runtimes(
    options: dict, backends: tuple[str, ...], batches: tuple[int, ...], frames: int, threads: int | None = None
) -> ScenarioResult:
    from bench import runtime_compare  # noqa: PLC0415

    model, _ = _setup(options, None)
    pairs = tuple((name, device or None) for name, _, device in (b.partition(":") for b in backends)) or None
    return runtime_compare.run(model.ensemble, model.description, pairs, batches or (1, 8, 32), frames, threads)


@command.command(name="soak")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=1), default=108_000, show_default=True, help="Frames pushed (108,000 = an hour at 30 fps).")
@click.option("--pullback-frames", type=click.IntRange(min=16), default=3000, show_default=True, help="Frames per pullback (begin/end each time).")
@click.option("--batch", type=click.IntRange(1, 256), default=16, show_default=True, help="Frames per pipeline call.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True, help="Size of generated frames (pixels).")
def soak_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None, frames: int, pullback_frames: int, batch: int, image_size: int) -> None:
    """Soak: frames at the maximum rate through the engine; memory over time must stay flat."""
    from bench import soak  # noqa: PLC0415

    path = _pullback(options, pullback, 256, image_size)
    model, runtime = _setup(options, backend, device, threads)
    result = with_load(soak.run, path, runtime, model.description, frames, pullback_frames, batch, quiet=options["quiet"])
    finish([result], options)


@command.command(name="stream")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=16), default=300, show_default=True, help="Frames of the replayed pullback.")
@click.option("--rate", "rates", multiple=True, metavar="FPS|max", help="Replay rates (repeatable) [default: 30, 60, max].")
@click.option("--max-batch", type=click.IntRange(1, 256), default=8, show_default=True, help="The engine's --max-batch.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True, help="Size of generated frames (pixels).")
def stream_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None, frames: int, rates: tuple[str, ...], max_batch: int, image_size: int) -> None:
    """End to end over ZeroMQ: ivuscal serve in a child process, replayed at 30/60 fps and max."""
    if device is not None:
        raise click.BadParameter("ivuscal serve runs its backend's default device", param_hint="--device")
    finish([with_load(_stream, options, backend, threads, pullback, frames, rates, max_batch, image_size)], options)


def _stream(
    options: dict, backend: str, threads: int | None, pullback: Path | None,
    frames: int, rates: tuple[str, ...], max_batch: int, image_size: int,
) -> ScenarioResult:
    from bench import end_to_end  # noqa: PLC0415
    from tools.replay import parse_fps  # noqa: PLC0415

    parsed = tuple(parse_fps(r) for r in rates) or end_to_end.RATES
    if any(r == 0.0 for r in parsed):
        raise click.BadParameter("give a number of frames per second or 'max'", param_hint="--rate")
    path = _pullback(options, pullback, frames, image_size)
    model, _ = _setup(options, None)
    return end_to_end.run(path, model.path, backend, model.description, parsed, max_batch, threads=threads)


@command.command(name="view")
@common_options
@pullback_option
@click.option("--backend", default="auto", show_default=True, help="The engine's inference backend.")
@click.option("--frames", type=click.IntRange(min=16), default=300, show_default=True, help="Frames replayed.")
@click.option("--fps", type=click.FloatRange(1, 120), default=30.0, show_default=True, help="Replay rate.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True, help="Frame size (pixels).")
def view_command(options: dict, pullback: Path | None, backend: str, frames: int, fps: float, image_size: int) -> None:
    """The live view's displayed frame rate in headless Chromium during a replay (goal >= 25 at 30 frames/s)."""
    from bench import view_fps  # noqa: PLC0415

    path = _pullback(options, pullback, frames, image_size)
    model, _ = _setup(options, None)
    finish([with_load(view_fps.run, path, model.path, backend, model.description, fps)], options)


@command.command(name="all")
@common_options
@backend_options
@pullback_option
@click.option("--frames", type=click.IntRange(min=64), default=3000, show_default=True, help="Frames of the offline pullback.")
@click.option("--baseline-frames", type=click.IntRange(min=16), default=300, show_default=True, help="Frames the naive baseline runs.")
@click.option("--stream-frames", type=click.IntRange(min=16), default=300, show_default=True, help="Frames replayed per rate over ZeroMQ.")
@click.option("--image-size", type=click.IntRange(min=64), default=512, show_default=True, help="Size of generated frames (pixels).")
def all_command(options: dict, backend: str, device: str | None, threads: int | None, pullback: Path | None, frames: int, baseline_frames: int, stream_frames: int, image_size: int) -> None:
    """Every scenario with its defaults (the soak excepted: run `ivuscal bench soak`)."""
    from bench import filter_speed  # noqa: PLC0415
    from bench.headline import headline  # noqa: PLC0415

    results = [
        with_load(_stream, options, backend, threads, pullback, stream_frames, (), 8, image_size),
        with_load(_offline, options, backend, device, threads, pullback, frames, baseline_frames, image_size, 32),
        with_load(_runtimes, options, (), (), 64, threads),
        with_load(filter_speed.run),
    ]
    summary = headline(results)
    finish(([summary] if summary else []) + results, options)
