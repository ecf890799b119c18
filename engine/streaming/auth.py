"""Who may talk to the live engine: CURVE keys (pyzmq `zmq.auth`) and the loopback-only default.

- `create_keys(dir, name)`: a certificate pair, `name.key` (public, to share) and
  `name.key_secret` (secret, owner-only), as `ivuscal keys` writes them.
- `CurveServer`: the engine side. Its ZAP authenticator thread is started before any socket is
  bound (a CURVE socket without an authenticator accepts every key) and allows exactly the
  public keys found in the `--auth` directory; each accepted message carries its sender's key
  as the ZeroMQ `User-Id` property (z85 text).
- `ClientKeys`: the sender/listener side (`replay`, `listen`, `demo`).
- `check_exposure`: without authentication only loopback and ipc:// endpoints are allowed
  (others need an explicit `--insecure`), with one warning that any local user can connect.
See docs/protocol.md, 'Security'.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from engine.errors import InputError

log = logging.getLogger(__name__)

_warned: list[bool] = []  # the unauthenticated warning is given once per process
_TCP = re.compile(r"^tcp://(?:\[(?P<ip6>[^\]]+)\]|(?P<host>[^:]+)):(?P<port>[^:]+)$")


def create_keys(directory: Path, name: str) -> tuple[Path, Path]:
    """Write `name.key` (public) and `name.key_secret` (secret, mode 0600) under `directory`."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise InputError(f"key name must be 1-64 characters of [A-Za-z0-9_.-], got {name!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise InputError("already exists; refusing to overwrite a key", source=str(path))
    old = os.umask(0o077)
    try:
        zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    return public, secret


def load_public(path: Path) -> bytes:
    """The public key of a certificate file (`.key` or `.key_secret`); InputError when unreadable."""
    return _load(path)[0]


def load_secret(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) keys of a `.key_secret` file; InputError when it holds no secret key."""
    public, secret = _load(path)
    if not secret:
        raise InputError("holds no secret key (give the .key_secret file)", source=str(path))
    return public, secret


def _load(path: Path) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise InputError(f"not a readable ZeroMQ certificate ({error})", source=str(path)) from None
    if not public:
        raise InputError("not a ZeroMQ certificate (no public key)", source=str(path))
    return public, secret


class CurveServer:
    """CURVE for the engine's sockets: `start()` the authenticator, then `apply()` to each socket before binding."""

    def __init__(self, context: zmq.Context, allowed_dir: Path, server_secret: Path) -> None:
        allowed_dir = Path(allowed_dir)
        if not allowed_dir.is_dir():
            raise InputError("--auth must be a directory of client public keys (*.key)", source=str(allowed_dir))
        self.allowed = sorted(allowed_dir.glob("*.key"))
        if not self.allowed:
            raise InputError(
                "holds no client public keys (*.key); create them with 'ivuscal keys'", source=str(allowed_dir)
            )
        for path in self.allowed:
            load_public(path)  # refuse a broken key file now, not at the first connection
        self.allowed_dir = allowed_dir
        self.public, self.secret = load_secret(server_secret)
        self.context = context
        self._authenticator: ThreadAuthenticator | None = None

    def start(self) -> None:
        """Start the ZAP authenticator thread (before any socket is bound)."""
        authenticator = ThreadAuthenticator(self.context, log=logging.getLogger("ivuscal.zap"))
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(self.allowed_dir))
        self._authenticator = authenticator

    def apply(self, socket: zmq.Socket) -> None:
        """Make `socket` a CURVE server with the engine's keys."""
        if self._authenticator is None:
            raise RuntimeError(
                "CurveServer.start() must come before apply(): without an authenticator CURVE accepts any key"
            )
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True

    def stop(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None


@dataclass(frozen=True)
class ClientKeys:
    """A client's side of CURVE: the engine's public certificate and this client's secret one."""

    server_key: Path  # NAME.key (or .key_secret) of the engine
    client_key: Path  # this client's NAME.key_secret

    def apply(self, socket: zmq.Socket) -> None:
        """Make `socket` a CURVE client (before it connects); InputError for an unreadable key file."""
        public, secret = load_secret(self.client_key)
        socket.curve_serverkey = load_public(self.server_key)
        socket.curve_publickey = public
        socket.curve_secretkey = secret


def client_keys(server_key: Path | None, client_key: Path | None) -> ClientKeys | None:
    """The `--server-key/--client-key` pair of a client command (both or neither)."""
    if (server_key is None) != (client_key is None):
        raise InputError(
            "--server-key and --client-key go together (the engine's public key and this client's secret key)"
        )
    return ClientKeys(server_key, client_key) if server_key is not None and client_key is not None else None


def is_loopback(address: str) -> bool:
    """True for endpoints only this machine can reach: tcp on 127.0.0.0/8, localhost or ::1; ipc://; inproc://."""
    if address.startswith(("ipc://", "inproc://")):
        return True
    match = _TCP.match(address)
    if match is None:
        return False
    host = match.group("ip6") or match.group("host")
    return host in ("localhost", "::1") or host.startswith("127.")


def check_exposure(addresses: list[str], authenticated: bool, insecure: bool) -> None:
    """Refuse a non-loopback endpoint without auth unless `insecure`; warn (once a process) when unauthenticated."""
    exposed = [a for a in addresses if not is_loopback(a)]
    if exposed and not authenticated and not insecure:
        raise InputError(
            "binds or connects beyond loopback without authentication; "
            "give --auth DIR (CURVE keys) or, knowingly, --insecure",
            source=", ".join(exposed),
        )
    if not authenticated and not _warned:
        _warned.append(True)
        where = "any host that can reach " + ", ".join(exposed) if exposed else "any local user"
        log.warning(
            "no --auth: %s can send frames to and read results from this engine (docs/protocol.md, 'Security')", where
        )


def ipc_path(address: str) -> Path | None:
    """The socket file of an ipc:// endpoint, else None."""
    return Path(address[len("ipc://") :]) if address.startswith("ipc://") else None
