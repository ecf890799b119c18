"""Run the live view's web server (uvicorn) beside the engine or on its own.

view = ViewServer(create_app(results_endpoint), "127.0.0.1", 8090)
url = view.start()      # a daemon thread; returns http://host:port/ once it listens
...
view.stop()
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from engine.errors import InputError, InternalError

DEFAULT_VIEW = "127.0.0.1:8090"


def host_port(value: str, option: str, insecure: bool = False) -> tuple[str, int]:
    """'HOST:PORT' (PORT 0 picks a free one) -> (host, port); raises InputError naming `option`.

    The page and /metrics have no authentication (the images are patient images), so a host
    beyond loopback is refused unless `insecure` (`--insecure`) says it is meant.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"{option} must be HOST:PORT (e.g. {DEFAULT_VIEW}), got {value!r}")
    host = host.strip("[]")
    if not (host in ("localhost", "::1") or host.startswith("127.")) and not insecure:
        raise InputError(f"{option} {value}: the live view and /metrics have no authentication; serve them on "
                         "loopback (and tunnel, e.g. ssh -L) or, knowingly, add --insecure")
    return host, int(port)


def connectable(endpoint: str) -> str:
    """A bound ZeroMQ endpoint as an address to connect to (a wildcard host becomes loopback)."""
    for wildcard in ("tcp://0.0.0.0:", "tcp://*:"):
        if endpoint.startswith(wildcard):
            return "tcp://127.0.0.1:" + endpoint[len(wildcard) :]
    return endpoint


class ViewServer:
    """uvicorn serving `app` on host:port, in a thread (`start`/`stop`) or in the foreground (`run`)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.app = app
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """http://host:port/ with the port actually bound."""
        port = self.server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    def start(self, timeout_s: float = 15.0) -> str:
        """Serve in a daemon thread; returns the URL once it accepts connections."""
        self._thread = threading.Thread(target=self.server.run, name="ivuscal-view", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive():
                raise InputError(
                    f"cannot serve the live view on {self.host}:{self.server.config.port}"
                    " (address in use or not allowed?)"
                )
            if time.monotonic() > deadline:
                raise InternalError(f"the live view did not start within {timeout_s} s")
            time.sleep(0.02)
        return self.url

    def clients(self) -> int:
        """Pages connected now."""
        return self.app.state.bridge.clients

    def run(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM."""
        self.server.run()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
