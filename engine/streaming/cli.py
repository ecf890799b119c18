"""`ivuscal serve`: the live streaming engine over ZeroMQ (docs/protocol.md, docs/streaming.md)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType

import click

from engine.streaming.preview import PreviewSettings
from engine.streaming.server import ServerConfig, create_server

log = logging.getLogger(__name__)


@click.command(name="serve")
@click.option("--frames", "frames_address", default=ServerConfig.frames_address, show_default=True, help="Frames in: PULL socket address (bound).")
@click.option("--connect-frames", is_flag=True, help="Connect the frames socket to --frames instead of binding it.")
@click.option("--results", "results_address", default=ServerConfig.results_address, show_default=True, help="Results out: PUB socket address (bound).")
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("ivuscal-journal"),
    show_default=True,
    help="Write each pullback's results here (msgpack records).",
)
@click.option("--no-journal", is_flag=True, help="Do not journal results to disk.")
@click.option("--backend", default="auto", show_default=True, help="Inference backend (see engine/runtimes).")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Ensemble weights (default: the shipped model).")
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Inference threads (1 keeps a core for receiving and publishing; see docs/streaming.md).",
)
@click.option("--max-batch", type=click.IntRange(1, 256), default=ServerConfig.max_batch, show_default=True, help="Most frames inferred at once when catching up.")
@click.option("--queue", "queue_size", type=click.IntRange(1, 100_000), default=ServerConfig.queue_size, show_default=True, help="Frames held before new ones are dropped.")
@click.option("--heartbeat", type=click.FloatRange(0.05, 60), default=ServerConfig.heartbeat_s, show_default=True, help="Seconds between heartbeats.")
@click.option("--no-rows", is_flag=True, help="Leave the per-A-line probability and spread bytes out of results.")
@click.option("--view", "view", default=None, help="Live web view and /metrics on HOST:PORT, e.g. 127.0.0.1:8090.")
@click.option("--metrics", "metrics", default=None, help="Serve Prometheus /metrics on HOST:PORT (without the view).")
@click.option(
    "--preview-fps", type=click.FloatRange(0, 120), default=PreviewSettings.fps, show_default=True,
    help="JPEG previews per stream per second for the view (0: none).",
)
@click.option(
    "--preview-size", type=click.IntRange(32, 1024), default=PreviewSettings.max_side, show_default=True,
    help="Longest side of a preview, pixels.",
)
def command(
    frames_address: str,
    connect_frames: bool,
    results_address: str,
    journal_dir: Path,
    no_journal: bool,
    backend: str,
    model: Path | None,
    threads: int,
    max_batch: int,
    queue_size: int,
    heartbeat: float,
    no_rows: bool,
    view: str | None,
    metrics: str | None,
    preview_fps: float,
    preview_size: int,
) -> None:
    """Run the live engine until SIGINT/SIGTERM; queued frames and open pullbacks are flushed on exit."""
    config = ServerConfig(
        frames_address=frames_address,
        results_address=results_address,
        frames_connect=connect_frames,
        journal_dir=None if no_journal else journal_dir,
        max_batch=max_batch,
        queue_size=queue_size,
        heartbeat_s=heartbeat,
        send_rows=not no_rows,
        preview=PreviewSettings(fps=preview_fps, max_side=preview_size) if preview_fps > 0 else None,
    )
    server = create_server(config, backend=backend, model=model, threads=threads)
    frames_endpoint, results_endpoint = server.bind()
    attached = None
    if view or metrics:
        from engine.view.attach import attach  # noqa: PLC0415 - starlette and uvicorn only when asked for

        attached = attach(server, view, metrics)

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        log.warning("signal %d: finishing queued work and shutting down", signum)
        server.stop()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    click.echo(f"ivuscal serve: frames in {frames_endpoint} ({'connect' if connect_frames else 'bind'}), results out {results_endpoint}; {server.status['backend']} {server.status['model']}", err=True)
    if attached:
        view_url = attached.view_url or "-"
        click.echo(f"ivuscal serve: live view {view_url}, metrics {attached.metrics_endpoint}", err=True)
    server.run()
    if attached:
        attached.stop()
    click.echo("ivuscal serve: stopped", err=True)
