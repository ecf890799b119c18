"""`ivuscal serve` (the live engine over ZeroMQ) and `ivuscal keys` (its CURVE certificates); docs/protocol.md."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from engine.errors import InputError
from engine.runtimes.cli_options import precision_option
from engine.streaming.auth import create_keys
from engine.streaming.preview import PreviewSettings
from engine.streaming.server import MIB, ServerConfig, create_server

log = logging.getLogger(__name__)

_DEFAULTS = ServerConfig()


@click.command(name="serve")
@click.option(
    "--frames",
    "frames_address",
    default=ServerConfig.frames_address,
    show_default=True,
    help="Frames in: PULL socket address (bound).",
)
@click.option("--connect-frames", is_flag=True, help="Connect the frames socket to --frames instead of binding it.")
@click.option(
    "--results",
    "results_address",
    default=ServerConfig.results_address,
    show_default=True,
    help="Results out: PUB socket address (bound).",
)
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("ivuscal-journal"),
    show_default=True,
    help="Write each pullback's results here (msgpack records).",
)
@click.option("--no-journal", is_flag=True, help="Do not journal results to disk.")
@click.option(
    "--journal-fsync",
    "journal_fsync_s",
    type=click.FloatRange(0),
    default=ServerConfig.journal_fsync_s,
    show_default=True,
    help="Most seconds between fsyncs of an open journal (records reach the OS after every batch regardless).",
)
@click.option(
    "--journal-retention-days",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Delete journals older than this many days (checked at start and hourly; default: keep all).",
)
@click.option("--backend", default="auto", show_default=True, help="Inference backend (see engine/runtimes).")
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ensemble weights (default: the shipped model).",
)
@click.option("--device", default=None, help="'cpu', 'cuda' or 'cuda:N' (the backend's default when omitted).")
@precision_option
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Inference threads (1 keeps a core for receiving and publishing; see docs/streaming.md).",
)
@click.option(
    "--max-batch",
    type=click.IntRange(1, 256),
    default=ServerConfig.max_batch,
    show_default=True,
    help="Most frames inferred at once when catching up.",
)
@click.option(
    "--queue",
    "queue_size",
    type=click.IntRange(1, 100_000),
    default=ServerConfig.queue_size,
    show_default=True,
    help="Frames held before new ones are dropped.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(0.05, 60),
    default=ServerConfig.heartbeat_s,
    show_default=True,
    help="Seconds between heartbeats.",
)
@click.option("--no-rows", is_flag=True, help="Leave the per-A-line probability and spread bytes out of results.")
@click.option(
    "--max-streams",
    type=click.IntRange(1, 10_000),
    default=ServerConfig.max_streams,
    show_default=True,
    help="Pullbacks open at once; the next start is refused.",
)
@click.option(
    "--max-gap",
    type=click.IntRange(0, 100_000),
    default=ServerConfig.max_gap,
    show_default=True,
    help="Most missing frames filled for one message; a larger jump is refused.",
)
@click.option(
    "--idle-timeout",
    "idle_timeout_s",
    type=click.FloatRange(0.1),
    default=ServerConfig.idle_timeout_s,
    show_default=True,
    help="Seconds without a message after which an open pullback is closed (reason 'idle').",
)
@click.option(
    "--max-frame-mb",
    type=click.FloatRange(0.001, 64),
    default=_DEFAULTS.max_frame_bytes / MIB,
    show_default=True,
    help="Largest frame accepted (pixels, MiB); sizes ZeroMQ's message limit.",
)
@click.option(
    "--receive-buffer-mb",
    type=click.IntRange(1, 65_536),
    default=_DEFAULTS.receive_budget_bytes // MIB,
    show_default=True,
    help="Memory ZeroMQ may hold per connected sender (receive high-water mark = this / largest frame).",
)
@click.option(
    "--shutdown-timeout",
    "shutdown_s",
    type=click.FloatRange(0.5, 600),
    default=ServerConfig.shutdown_s,
    show_default=True,
    help="On SIGTERM: seconds to drain and process what was received; after it, drop notices.",
)
@click.option(
    "--auth",
    "auth_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="CURVE: accept only clients whose public keys (*.key) are in this directory (see 'ivuscal keys').",
)
@click.option(
    "--server-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --auth: the engine's secret certificate (NAME.key_secret).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a non-loopback address without --auth (anyone who can reach it can inject and read).",
)
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
    journal_fsync_s: float,
    journal_retention_days: float | None,
    backend: str,
    model: Path | None,
    device: str | None,
    precision: str | None,
    threads: int,
    max_batch: int,
    queue_size: int,
    heartbeat: float,
    no_rows: bool,
    max_streams: int,
    max_gap: int,
    idle_timeout_s: float,
    max_frame_mb: float,
    receive_buffer_mb: int,
    shutdown_s: float,
    auth_dir: Path | None,
    server_key: Path | None,
    insecure: bool,
    view: str | None,
    metrics: str | None,
    preview_fps: float,
    preview_size: int,
) -> None:
    """Run the live engine until SIGINT/SIGTERM; what was received is processed and open pullbacks flushed on exit."""
    if (auth_dir is None) != (server_key is None):
        raise click.UsageError("--auth and --server-key go together")
    config = ServerConfig(
        frames_address=frames_address,
        results_address=results_address,
        frames_connect=connect_frames,
        journal_dir=None if no_journal else journal_dir,
        journal_fsync_s=journal_fsync_s,
        journal_retention_days=journal_retention_days,
        max_batch=max_batch,
        queue_size=queue_size,
        heartbeat_s=heartbeat,
        send_rows=not no_rows,
        max_streams=max_streams,
        max_gap=max_gap,
        idle_timeout_s=idle_timeout_s,
        max_frame_bytes=int(max_frame_mb * MIB),
        receive_budget_bytes=receive_buffer_mb * MIB,
        shutdown_s=shutdown_s,
        auth_dir=auth_dir,
        server_key=server_key,
        insecure=insecure,
        preview=PreviewSettings(fps=preview_fps, max_side=preview_size) if preview_fps > 0 else None,
    )
    server = create_server(config, backend=backend, model=model, threads=threads, device=device, precision=precision)
    frames_endpoint, results_endpoint = server.bind()
    attached = None
    if view or metrics:
        from engine.view.attach import attach

        try:
            attached = attach(server, view, metrics)
        except InputError:
            server.close()
            raise

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        log.warning("signal %d: finishing what was received (at most %.0f s) and shutting down", signum, shutdown_s)
        server.stop()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    security = "CURVE" if auth_dir else "no auth"
    auto = f" (auto: {server.status['auto']})" if server.status.get("auto") else ""
    click.echo(
        f"ivuscal serve: frames in {frames_endpoint} ({'connect' if connect_frames else 'bind'}), "
        f"results out {results_endpoint}; "
        f"{server.status['backend']} {server.status['model']}{auto}; {security}",
        err=True,
    )
    if attached:
        view_url = attached.view_url or "-"
        click.echo(f"ivuscal serve: live view {view_url}, metrics {attached.metrics_endpoint}", err=True)
    server.run()
    if attached:
        attached.stop()
    click.echo("ivuscal serve: stopped", err=True)


def client_key_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--server-key` and `--client-key` for the clients of an engine run with `--auth` (replay, listen, demo)."""
    key = click.Path(dir_okay=False, exists=True, path_type=Path)
    command = click.option(
        "--client-key", type=key, default=None, help="CURVE: this client's secret certificate (NAME.key_secret)."
    )(command)
    return click.option(
        "--server-key", type=key, default=None, help="CURVE: the engine's public certificate (NAME.key)."
    )(command)


@click.command(name="keys")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--name",
    "names",
    multiple=True,
    default=("server", "client"),
    show_default=True,
    help="Certificate pair(s) to create (repeat the option for several).",
)
def keys_command(directory: Path, names: tuple[str, ...]) -> None:
    """Create CURVE certificate pairs in DIRECTORY: NAME.key (public) and NAME.key_secret (secret, owner-only).

    The engine runs with `serve --auth DIR --server-key server.key_secret`, where DIR holds the
    public keys (*.key) of the clients it accepts; a client gives `--server-key server.key
    --client-key NAME.key_secret`.
    """
    for name in names:
        public, secret = create_keys(directory, name)
        click.echo(f"{public}\n{secret}")
