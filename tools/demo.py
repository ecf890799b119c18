"""`ivuscal demo`: the whole live path on one machine, with nothing to prepare.

1. generate a pullback with the simulator (cached, so later runs start at once);
2. start the engine in this process (loopback sockets on free ports, default model);
3. replay the pullback from its DICOM file at 30 frames/s, showing the arcs as they come in the
   terminal and in the live web view (`--view`, its URL printed; `--view-wait S` waits for a browser);
4. stop cleanly and write the report (`ivuscal analyze` files) from the engine's journal,
   with the simulator's truth for comparison, plus the live statistics (latency, drops).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import click
import numpy as np

from engine.cache_paths import cache_subdir
from engine.errors import InputError
from engine.json_output import write_json
from engine.pipeline import PipelineSettings
from engine.streaming.auth import ClientKeys, create_keys
from engine.streaming.latency import engine_latency_ms, summarize_ms
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.preview import PreviewSettings
from engine.streaming.server import ServerConfig, create_server
from engine.truth import read_truth
from engine.view.attach import attach
from engine.view.runner import DEFAULT_VIEW
from tools.listen import format_event
from tools.replay import replay_file

STREAM = "demo"


def demo_pullback(n_frames: int, seed: int, image_size: int, directory: Path, quiet: bool) -> Path:
    """The simulated pullback as DICOM (with truth beside it), generated once per settings."""
    from tools.simulator import PullbackConfig, iter_pullback, write_pullback

    config = PullbackConfig(n_frames=n_frames, image_size=image_size, fps=30.0)
    identity = json.dumps({"config": config.to_dict(), "seed": seed}, sort_keys=True, default=str)
    key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    path = directory / f"pullback-{n_frames}f-{image_size}px-seed{seed}-{key}.dcm"
    if path.is_file():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    if not quiet:
        click.echo(f"generating a {n_frames}-frame pullback (once; cached in {directory}) ...", err=True)
    write_pullback(path, iter_pullback(config, seed))  # truth first, then the DICOM atomically: present means complete
    return path


def demo_keys(directory: Path) -> ClientKeys:
    """The demo's CURVE keys in `directory`: the engine's pair and the demo client's, created when absent."""
    for name in ("server", "demo"):
        if not (directory / f"{name}.key_secret").is_file():
            create_keys(directory, name)
    return ClientKeys(directory / "server.key", directory / "demo.key_secret")


def live_view(quiet: bool) -> Any:
    """The listener's one-line-per-frame view, printed from the subscriber thread."""
    lock = threading.Lock()

    def show(event: dict[str, Any]) -> None:
        line = None if quiet and event.get("kind") != "summary" else format_event(event)
        if line:
            with lock:
                click.echo(line)

    return show


def write_outputs(out: Path, journal: Path, pullback: Path, settings: PipelineSettings,
                  live: dict[str, Any]) -> dict[str, Any]:
    """The offline report from the journal (same results as live), with the simulator's truth, plus live.json."""
    from engine.commands.analyze import analyze_journal
    from engine.report import write_report
    result = analyze_journal(journal, settings)
    labels = np.asarray(read_truth(pullback).labels(result.n_alines), dtype=bool)
    summary = write_report(out, result, labels if labels.shape == result.calcium.shape else None)
    write_json(out / "live.json", live, sort_keys=True)
    return summary


@click.command(name="demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("ivuscal-demo"),
              show_default=True, help="Report folder.")
@click.option("--frames", "n_frames", type=click.IntRange(20, 5000), default=300, show_default=True,
              help="Frames in the generated pullback.")
@click.option("--fps", type=click.FloatRange(1, 120), default=30.0, show_default=True,
              help="Replay rate (frames per second).")
@click.option("--seed", type=int, default=7, show_default=True, help="Simulator seed.")
@click.option("--image-size", type=click.IntRange(128, 1024), default=512, show_default=True,
              help="Simulated frame size in pixels.")
@click.option("--backend", default="auto", show_default=True, help="Inference backend.")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True, help="Inference threads.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ensemble weights (default: the shipped model).")
@click.option(
    "--cache", "cache", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where the generated pullback is kept (default: the demo folder of the ivuscal cache, docs/conventions.md)."
)
@click.option("--quiet", is_flag=True, help="Only the summary lines, no per-frame view.")
@click.option("--auth", "auth_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run with CURVE authentication, keys in this folder (server and demo pairs made when absent).")
@click.option("--view", "view", default=DEFAULT_VIEW, show_default=True,
              help="Live web view on HOST:PORT (else a free port).")
@click.option("--no-view", is_flag=True, help="No web view.")
@click.option("--view-wait", type=click.FloatRange(0, 3600), default=0.0,
              help="Seconds to wait for a browser before replaying.")
def command(
    out_dir: Path, n_frames: int, fps: float, seed: int, image_size: int, backend: str, threads: int,
    model: Path | None, cache: Path | None, quiet: bool, auth_dir: Path | None, view: str, no_view: bool,
    view_wait: float,
) -> None:
    """Generate a pullback, stream it live through the engine at 30 frames/s, show the arcs, write the report."""
    if image_size % 16:
        raise InputError(f"--image-size must be a multiple of 16, got {image_size}")
    pullback = demo_pullback(n_frames, seed, image_size, cache or cache_subdir("demo"), quiet)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = PipelineSettings()
    keys = demo_keys(auth_dir) if auth_dir is not None else None
    preview = None if no_view else PreviewSettings(fps=max(fps, 1.0))
    config = ServerConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", journal_dir=out_dir / "journal", heartbeat_s=0.5,
                          auth_dir=auth_dir, server_key=auth_dir / "server.key_secret" if auth_dir else None,
                          preview=preview)
    server = create_server(config, backend=backend, model=model, settings=settings, threads=threads)
    if not quiet:
        click.echo(f"engine: {server.status['backend']} {server.status['model']}; "
                   f"replaying {pullback.name} at {fps:g} frames/s", err=True)
    stop = threading.Event()
    with LoopbackEngine(server, on_event=live_view(quiet), keys=keys) as engine:
        attached = None if no_view else attach(server, view, None, view_fallback_port=True)
        try:
            if attached is not None:
                click.echo(f"live view: {attached.view_url}", err=True)
                if view_wait and not attached.wait_for_browser(view_wait):
                    click.echo(f"no browser opened the view within {view_wait:g} s; replaying anyway", err=True)
            replay_file(pullback, engine.frames_endpoint, fps, STREAM, f"demo-seed{seed}",
                        stop=stop, context=server.context, keys=keys)
            events = engine.wait_for_summaries(1, timeout_s=max(120.0, 2 * n_frames / fps))
        except KeyboardInterrupt:
            stop.set()
            raise
        finally:
            if attached is not None:
                attached.stop()
    started = next(e for e in events if e["kind"] == "started" and e["stream"] == STREAM)
    ended = next(e for e in events if e["kind"] == "summary" and e["stream"] == STREAM)
    latency = summarize_ms(engine_latency_ms(events))
    heartbeat = [e for e in events if e["kind"] == "heartbeat"][-1]
    live = {
        "frames": ended["n_frames"],
        "results": sum(e["kind"] == "result" for e in events),
        "dropped": sum(e["kind"] == "drop" for e in events),
        "filled": ended.get("filled", 0),
        "fps": fps,
        "engine_latency": latency,
        "backend": heartbeat["backend"],
        "model": heartbeat["model"],
    }
    summary = write_outputs(out_dir, Path(started["journal"]), pullback, settings, live)
    click.echo(
        f"{live['results']}/{live['frames']} frames live, {live['dropped']} dropped; "
        f"engine latency p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms; "
        f"{len(summary['lesions'])} lesion(s), max arc {summary['max_arc_deg']:.0f} deg, "
        f"calcium score {summary['score']['total_assessed']}; report in {out_dir}"
    )
