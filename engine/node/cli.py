"""`ivuscal dicom-node`: receive IVUS pullbacks by C-STORE, analyse them, send the SR and presentation state on."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from pathlib import Path

import click

from engine.errors import InputError
from engine.node.analyser import RuntimeChoice
from engine.node.node import DicomNode, NodeConfig
from engine.node.scp import ScpConfig
from engine.node.sender import Destination
from engine.pipeline import PipelineSettings
from engine.runtimes.cli_options import runtime_options

DEFAULTS = ScpConfig()
PIPELINE = PipelineSettings()
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def tls_context(cert: Path | None, key: Path | None, ca: Path | None) -> ssl.SSLContext | None:
    """Server TLS from a certificate and key; with `ca`, callers must present a certificate it signed."""
    if cert is None and key is None and ca is None:
        return None
    if cert is None or key is None:
        raise click.UsageError("TLS needs both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(ca)
    except (ssl.SSLError, OSError) as error:
        raise InputError(f"cannot load the TLS certificate, key or CA ({error})") from None
    return context


@click.command(name="dicom-node")
@click.option("--spool", type=click.Path(file_okay=False, path_type=Path), default=Path("ivuscal-node"),
              show_default=True, help="Folder of received pullbacks, their reports and their state.")
@click.option("--host", default=DEFAULTS.host, show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULTS.port, show_default=True,
              help="DICOM port (0: any free port, logged).")
@click.option("--ae-title", default=DEFAULTS.ae_title, show_default=True, help="The node's AE title.")
@click.option("--allow", "allowed", multiple=True, metavar="AET",
              help="Calling AE title allowed to connect (repeatable; default: any).")
@click.option("--store-to", "store_to", default=None, metavar="AET@HOST:PORT",
              help="Send each SR and presentation state there by C-STORE (default: keep them locally only).")
@click.option("--retry-s", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between attempts while the destination is down.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pullbacks analysed at the same time.")
@click.option("--window-frames", default=PIPELINE.window_frames, show_default=True, type=int,
              help="Filter window along frames (odd).")
@click.option("--window-alines", default=PIPELINE.window_alines, show_default=True, type=int,
              help="Filter window along A-lines (odd).")
@click.option("--tls-cert", type=_FILE, default=None, help="PEM certificate: accept DICOM over TLS only.")
@click.option("--tls-key", type=_FILE, default=None, help="PEM private key of --tls-cert.")
@click.option("--tls-ca", type=_FILE, default=None, help="PEM CA bundle: require client certificates it signed.")
@runtime_options
def command(
    spool: Path, host: str, port: int, ae_title: str, allowed: tuple[str, ...], store_to: str | None, retry_s: float,
    workers: int, window_frames: int, window_alines: int,
    tls_cert: Path | None, tls_key: Path | None, tls_ca: Path | None,
    backend: str, model: Path | None, device: str | None, precision: str | None, threads: int | None,
) -> None:
    """Run a DICOM storage node that analyses every IVUS pullback it receives (stop with Ctrl-C or SIGTERM)."""
    if not 1 <= len(ae_title) <= 16:
        raise click.BadParameter("an AE title has 1 to 16 characters", param_hint="--ae-title")
    config = NodeConfig(
        spool=spool,
        scp=ScpConfig(host=host, port=port, ae_title=ae_title, allowed_callers=allowed,
                      tls=tls_context(tls_cert, tls_key, tls_ca)),
        destination=Destination.parse(store_to) if store_to else None,
        runtime=RuntimeChoice(backend=backend, model=model, device=device, precision=precision, threads=threads),
        settings=PipelineSettings(window_frames=window_frames, window_alines=window_alines),
        workers=workers,
        retry_s=retry_s,
    )
    logging.getLogger("ivuscal.node").setLevel(logging.INFO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        node = DicomNode(config).start()
    except OSError as error:
        raise InputError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    try:
        stop.wait()
    finally:
        node.close()
