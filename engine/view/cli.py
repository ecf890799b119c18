"""`ivuscal view`: the live web view of a running engine, served on its own (docs/streaming.md)."""

from __future__ import annotations

import click

from engine.view.runner import DEFAULT_VIEW, ViewServer, host_port

DEFAULT_RESULTS = "tcp://127.0.0.1:5556"


@click.command(name="view")
@click.option(
    "--from", "address", default=DEFAULT_RESULTS, show_default=True, help="The engine's results address (SUB connects)."
)
@click.option(
    "--listen",
    "listen",
    default=DEFAULT_VIEW,
    show_default=True,
    help="HOST:PORT of the page and /metrics (loopback unless told otherwise).",
)
@click.option(
    "--stale",
    "stale_s",
    type=click.FloatRange(0.5, 600),
    default=3.0,
    show_default=True,
    help="Seconds without a heartbeat before the page says the engine is unreachable.",
)
@click.option("--insecure", is_flag=True,
              help="Allow a --listen host beyond loopback (the page has no authentication).")
def command(address: str, listen: str, stale_s: float, insecure: bool) -> None:
    """Serve the live view (page, WebSocket, /metrics) of the engine publishing on --from."""
    from engine.view.app import create_app

    host, port = host_port(listen, "--listen", insecure)
    view = ViewServer(create_app(address, stale_after_s=stale_s), host, port)
    click.echo(f"ivuscal view: open http://{host}:{port}/ (results from {address}; metrics at /metrics)", err=True)
    view.run()
