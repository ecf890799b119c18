"""Real DICOM network parts for tests: a C-STORE client, a storage SCP that keeps what it receives, free ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout_s: float = 120.0, what: str = "condition") -> None:
    """Poll `condition` every 0.1 s; fail the test with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def c_store(path: Path | Dataset, port: int, *, calling: str = "TESTSCU", called: str = "IVUSCAL",
            tls_args: tuple | None = None) -> int | None:
    """C-STORE one file or dataset; its status, or None when no association was established."""
    ds = pydicom.dcmread(path) if isinstance(path, Path) else path
    ae = AE(ae_title=calling)
    ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID, ExplicitVRLittleEndian,
                                              ImplicitVRLittleEndian, JPEGBaseline8Bit])
    assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=tls_args)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(ds)
        return int(status.Status) if status else None
    finally:
        assoc.release()


def c_echo(
    port: int, *, calling: str = "TESTSCU", called: str = "IVUSCAL", tls_args: tuple | None = None
) -> int | None:
    """C-ECHO; its status, or None when no association was established."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=tls_args)
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


@contextmanager
def storage_scp(port: int = 0, ae_title: str = "DEST") -> Iterator[tuple[int, list[Dataset]]]:
    """A pynetdicom storage SCP on loopback that keeps every dataset it receives: (port, datasets)."""
    received: list[Dataset] = []

    def keep(event: evt.Event) -> int:
        received.append(event.dataset)
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = StoragePresentationContexts
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, keep)])
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
