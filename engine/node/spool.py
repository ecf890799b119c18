"""The node's on-disk spool: every received pullback and where it stands, so that a restart loses nothing.

Layout (docs/dicom.md, "DICOM node"):
    SPOOL/<job>/pullback.dcm   the dataset as received (written and fsynced before the store is acknowledged)
    SPOOL/<job>/report/        the analysis report, calcium_sr.dcm and calcium_arcs_pr.dcm
    SPOOL/<job>/state.json     {"state": ..., "detail": ...}; absent until the analysis ends
`<job>` is a hash of the SOP Instance UID, so folder names and log lines carry no identifier.
States: received (no state.json) -> analysed -> sent; or not_analysable / failed (kept, never retried).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

PULLBACK = "pullback.dcm"
REPORT = "report"
STATE = "state.json"


class JobState(StrEnum):
    RECEIVED = "received"
    ANALYSED = "analysed"
    SENT = "sent"
    NOT_ANALYSABLE = "not_analysable"
    FAILED = "failed"


def job_id(sop_instance_uid: str) -> str:
    """A short, stable, non-identifying name for a received instance."""
    return hashlib.sha256(sop_instance_uid.encode()).hexdigest()[:16]


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename into place, fsync the folder: all or nothing on disk."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class Spool:
    """Received pullbacks and their state under one folder (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def pullback(self, job: str) -> Path:
        return self.root / job / PULLBACK

    def report_dir(self, job: str) -> Path:
        return self.root / job / REPORT

    def store(self, job: str, encoded: bytes) -> bool:
        """Keep a received Part 10 file durably; False when this instance was already stored (kept as is)."""
        path = self.pullback(job)
        if path.is_file():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, encoded)
        return True

    def state(self, job: str) -> JobState:
        try:
            return JobState(json.loads((self.root / job / STATE).read_text())["state"])
        except FileNotFoundError:
            return JobState.RECEIVED

    def set_state(self, job: str, state: JobState, detail: str = "") -> None:
        _write_atomically(self.root / job / STATE, json.dumps({"state": state.value, "detail": detail}).encode())

    def jobs(self, state: JobState) -> Iterator[str]:
        """Stored jobs in `state`, oldest first (by the pullback file's time)."""
        stored = sorted(self.root.glob(f"*/{PULLBACK}"), key=lambda p: p.stat().st_mtime)
        return (p.parent.name for p in stored if self.state(p.parent.name) is state)
