"""Send each analysed pullback's SR and presentation state to the destination by C-STORE, retrying until it takes them.

One thread owns the outgoing associations. A job is marked sent only when the destination
answered success (or a warning) for both files; otherwise it stays analysed, is tried again every
`retry_s` seconds, and after a restart the node queues it again (docs/dicom.md).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # names created at import time, unknown to stubs
    ColorSoftcopyPresentationStateStorage,
    Comprehensive3DSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
)

from engine.dicom_out.write import PR_NAME, SR_NAME
from engine.errors import InputError
from engine.node.spool import JobState, Spool

log = logging.getLogger("ivuscal.node")

OUTPUT_SOP_CLASSES = (Comprehensive3DSRStorage, GrayscaleSoftcopyPresentationStateStorage,
                      ColorSoftcopyPresentationStateStorage)
_DESTINATION = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>[^:@]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Destination:
    """A remote storage SCP: `AET@HOST:PORT`."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """Raises InputError for anything but AET@HOST:PORT (AE title 1-16 characters, port 1-65535)."""
        match = _DESTINATION.match(text.strip())
        if not match or not 0 < int(match["port"]) < 65536:
            raise InputError(f"destination {text!r} is not AET@HOST:PORT (AE title of 1-16 characters)")
        return cls(match["aet"], match["host"], int(match["port"]))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def store_files(paths: list[Path], destination: Destination, calling_ae_title: str, timeout_s: float = 30.0) -> str:
    """C-STORE `paths` in one association; '' when all were accepted, else what went wrong (one line)."""
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class in OUTPUT_SOP_CLASSES:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        return f"no association with {destination} (rejected, aborted or unreachable)"
    try:
        for path in paths:
            status = assoc.send_c_store(path)
            code = int(status.get("Status", -1)) if status else -1
            if code != 0 and not 0xB000 <= code <= 0xBFFF:
                return f"{destination} answered status 0x{code & 0xFFFF:04X} for {path.name}" if code >= 0 else (
                    f"{destination} gave no C-STORE response for {path.name}")
    finally:
        assoc.release()
    return ""


class Sender:
    """A thread that sends analysed jobs to `destination`, retrying every `retry_s` seconds until accepted."""

    def __init__(self, spool: Spool, destination: Destination, calling_ae_title: str, retry_s: float = 30.0) -> None:
        self.spool, self.destination = spool, destination
        self.calling_ae_title, self.retry_s = calling_ae_title, retry_s
        self._pending: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ivuscal-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: str) -> None:
        with self._lock:
            if job not in self._pending:
                self._pending.append(job)
        self._wake.set()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop after the association in progress; unsent jobs stay analysed on disk for the next start."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("sender still busy with %s after %.0f s; leaving it", self.destination, timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stop.is_set():
                with self._lock:
                    job = self._pending[0] if self._pending else None
                if job is None:
                    break
                if not self._send(job):  # destination down: wait, then try the same job again
                    self._stop.wait(self.retry_s)
                    continue
                with self._lock:
                    self._pending.popleft()

    def _send(self, job: str) -> bool:
        out = self.spool.report_dir(job)
        try:
            problem = store_files([out / SR_NAME, out / PR_NAME], self.destination, self.calling_ae_title)
        except Exception as error:  # a bug or a broken file must not end the thread: log, keep the job, retry
            log.exception("pullback %s: sending to %s failed", job, self.destination)
            problem = f"{type(error).__name__}: {error}"
        if problem:
            log.warning("pullback %s: not sent (%s); retrying in %.0f s", job, problem, self.retry_s)
            return False
        self.spool.set_state(job, JobState.SENT, str(self.destination))
        log.info("pullback %s: SR and presentation state sent to %s", job, self.destination)
        return True
