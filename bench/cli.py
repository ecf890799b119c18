"""`ivuscal bench`: latency and throughput benchmarks, written as JSON, Markdown and PNG plots.

`ivuscal bench` alone runs every scenario with its defaults; `ivuscal bench <scenario>` runs
one. Common options (`--out`, `--cache-dir`, `--weights`, `--quiet`) are accepted before or
after the scenario name.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from bench.machine import machine_info
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
        }
        return func(*args, options=options, **kwargs)

    return wrapper


def finish(results: list[ScenarioResult], options: dict) -> None:
    """Write the report and say where it went, with one line per skipped scenario."""
    written = write_report(options["out"], machine_info(), results)
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
        ctx.invoke(filter_command)


@command.command(name="filter")
@common_options
@click.option("--frames", type=click.IntRange(min=2), default=300, show_default=True, help="Probability rows pushed per window size.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy"]), default="numpy", show_default=True, help="Array namespace (cupy: GPU).")
@click.option("--window", "windows", type=(int, int), multiple=True, metavar="FRAMES ALINES", help="Window sizes to time (repeatable) [default: 3 11, 7 31, 13 61, 25 121].")
@click.option("--recompute-seconds", type=click.FloatRange(min=0.0), default=4.0, show_default=True, help="Time budget of the recomputation per window.")
def filter_command(options: dict, frames: int, xp_name: str, windows: tuple[tuple[int, int], ...], recompute_seconds: float) -> None:
    """Filter alone: ring buffer against per-frame recomputation, across window sizes."""
    from bench import filter_speed  # noqa: PLC0415

    result = filter_speed.run(frames=frames, windows=windows or filter_speed.WINDOWS, xp_name=xp_name, recompute_seconds=recompute_seconds)
    finish([result], options)
