"""Per-pullback journal of the live engine's results, so nothing is lost without a subscriber.

A journal is a file of concatenated msgpack maps, appended per processed frame or fill:
- `{"k": "start", "v": 1, "stream", "pullback", "layout", "shape", "dtype", "calib", "n_alines",
   "model", "settings", "t_wall_ns"}` first;
- `{"k": "rows", "frames": [i, ...], "position_mm": [...], "prob": float32 bytes (n x A),
   "spread": float32 bytes (n x A), "filled": null | reason}` per chunk: exactly the rows the
   filter was fed, in order. `filled` marks rows the engine held from the previous frame for
   frames it never processed (lost or dropped), so a rebuild reproduces the live results;
- `{"k": "end", "summary": {...}}` when the pullback ended normally.
`read_journal` rebuilds the probability map; the filter and quantification re-run offline on it.

Durability (docs/protocol.md, 'Journal'): the engine calls `flush()` after each batch, before it
publishes that batch's results, so every published frame is in the operating system's hands and
survives the engine being killed (`kill -9`); `os.fsync` follows at most every `fsync_interval_s`
(default 1 s) and at the end of the pullback, which bounds what a power loss can take.
`prune_journals` applies the retention limit.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import numpy as np

from engine.errors import InputError

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1
SUFFIX = ".journal.msgpack"


def journal_path(directory: Path, stream: str, pullback: str) -> Path:
    """A new file for this pullback under `directory` (never overwrites an earlier journal)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stream}__{pullback}")
    path = Path(directory) / f"{safe}{SUFFIX}"
    n = 1
    while path.exists():
        n += 1
        path = Path(directory) / f"{safe}-{n}{SUFFIX}"
    return path


class JournalWriter:
    """Appends one pullback's records to its journal file; `flush()` hands them to the OS (and fsyncs now and then)."""

    def __init__(self, path: Path, meta: dict[str, Any], fsync_interval_s: float | None = 1.0) -> None:
        """`fsync_interval_s`: at most this long between fsyncs at `flush()` (None: only at the end; 0: every flush)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync_interval_s = fsync_interval_s
        self._file: BinaryIO | None = open(self.path, "xb")
        self._synced = time.monotonic()
        self._write({"k": "start", "v": JOURNAL_VERSION, "t_wall_ns": time.time_ns(), **meta})
        self.flush()

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            raise ValueError(f"journal {self.path} is closed")
        self._file.write(msgpack.packb(record, use_bin_type=True))

    def rows(self, frames: list[int], position_mm: list[float], prob: np.ndarray, spread: np.ndarray,
             filled: str | None = None) -> None:
        """Record a chunk of per-frame probability and spread rows (`filled`: why they were filled)."""
        self._write(
            {
                "k": "rows",
                "frames": [int(i) for i in frames],
                "position_mm": [float(x) for x in position_mm],
                "prob": np.ascontiguousarray(prob, dtype=np.float32).tobytes(),
                "spread": np.ascontiguousarray(spread, dtype=np.float32).tobytes(),
                "filled": filled,
            }
        )

    def flush(self, sync: bool = False) -> None:
        """Write buffered records to the OS; fsync too when `sync` or the fsync interval has passed."""
        if self._file is None:
            return
        self._file.flush()
        interval = self.fsync_interval_s
        if sync or (interval is not None and time.monotonic() - self._synced >= interval):
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()

    def end(self, summary: dict[str, Any]) -> None:
        """Record the pullback summary, fsync and close the file."""
        self._write({"k": "end", "summary": summary})
        self.flush(sync=True)
        self.close()

    def close(self) -> None:
        """Close the file (records already written stay; an `end` record is not added)."""
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None


def prune_journals(directory: Path, max_age_s: float, now: float | None = None) -> int:
    """Delete journals under `directory` last written more than `max_age_s` ago; returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for path in Path(directory).glob(f"*{SUFFIX}"):
        try:
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # removed meanwhile
            continue
    if removed:
        log.info("journal retention: removed %d journals older than %.0f s from %s", removed, max_age_s, directory)
    return removed


@dataclass
class Journal:
    """A journal read back: metadata, the per-frame rows in frame order, and the summary if ended."""

    path: Path
    meta: dict[str, Any]
    frame_index: np.ndarray  # int64 (n,)
    position_mm: np.ndarray  # float64 (n,)
    probability: np.ndarray  # float32 (n, A): ensemble mean before the filter
    spread: np.ndarray  # float32 (n, A): ensemble member spread
    filled: list[int] = field(default_factory=list)  # frames never processed; rows held from the previous
    summary: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """True when the pullback ended normally (an `end` record was written)."""
        return self.summary is not None


def read_journal(path: Path | str) -> Journal:
    """Read a journal; a truncated tail (engine killed mid-write) keeps every complete record."""
    path = Path(path)
    if not path.is_file():
        raise InputError("journal not found", source=str(path))
    meta: dict[str, Any] | None = None
    frames: list[int] = []
    positions: list[float] = []
    probs: list[np.ndarray] = []
    spreads: list[np.ndarray] = []
    filled: list[int] = []
    summary: dict[str, Any] | None = None
    with open(path, "rb") as handle:
        unpacker = msgpack.Unpacker(handle, raw=False, strict_map_key=True)
        try:
            for record in unpacker:
                if not isinstance(record, dict) or "k" not in record:
                    raise InputError("not an ivuscal journal (record is not a map with 'k')", source=str(path))
                if meta is None:
                    if record["k"] != "start" or record.get("v") != JOURNAL_VERSION:
                        raise InputError("not an ivuscal journal (no version-1 start record)", source=str(path))
                    meta = record
                    continue
                if record["k"] == "rows":
                    n_alines = int(meta["n_alines"])
                    n = len(record["frames"])
                    frames.extend(record["frames"])
                    positions.extend(record["position_mm"])
                    probs.append(np.frombuffer(record["prob"], dtype=np.float32).reshape(n, n_alines))
                    spreads.append(np.frombuffer(record["spread"], dtype=np.float32).reshape(n, n_alines))
                    if record.get("filled"):
                        filled.extend(record["frames"])
                elif record["k"] == "end":
                    summary = record["summary"]
        except (msgpack.UnpackException, ValueError, KeyError, TypeError) as error:
            if isinstance(error, InputError):
                raise
            raise InputError(f"corrupt journal record ({type(error).__name__}: {error})", source=str(path)) from None
    if meta is None:
        raise InputError("empty journal (no start record)", source=str(path))
    n_alines = int(meta["n_alines"])
    order = np.argsort(np.asarray(frames, dtype=np.int64), kind="stable")
    empty = np.zeros((0, n_alines), dtype=np.float32)
    return Journal(
        path=path,
        meta=meta,
        frame_index=np.asarray(frames, dtype=np.int64)[order],
        position_mm=np.asarray(positions, dtype=np.float64)[order],
        probability=(np.concatenate(probs) if probs else empty)[order],
        spread=(np.concatenate(spreads) if spreads else empty)[order],
        filled=sorted(filled),
        summary=summary,
    )
