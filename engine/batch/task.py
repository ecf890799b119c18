"""The work of one pullback on a Dask worker: exactly `ivuscal analyze PULLBACK --out <report folder>`.

Runs on the worker, so it receives plain values and returns a small `Outcome`; the report files
stay on the (shared) file system. A pullback whose report already verifies is skipped, which
makes a rerun resume. Each worker process creates its inference runtime once and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.batch.cohort import cohort_row
from engine.batch.layout import publish, report_dir, temporary_dir, verified_row, write_manifest
from engine.commands.analyze import CHUNK_FRAMES, read_truth_file, report_pullback
from engine.dicom import CalibrationOverrides
from engine.errors import InputError
from engine.pipeline import PipelineSettings
from engine.truth import truth_paths

log = logging.getLogger(__name__)


class Status(StrEnum):
    ANALYSED = "analysed"
    SKIPPED = "skipped"  # a verified report of this input with these settings was already there
    FAILED = "failed"


@dataclass(frozen=True)
class BatchConfig:
    """What every task of a batch shares: the analysis settings and the runtime to create."""

    settings: PipelineSettings
    chunk_frames: int = CHUNK_FRAMES
    overrides: CalibrationOverrides | None = None
    backend: str = "auto"
    model: Path | None = None
    model_sha256: str = ""
    device: str | None = None
    precision: str | None = None
    threads: int = 1
    use_truth: bool = True

    def fingerprint(self) -> str:
        """SHA-256 of everything that changes a report: a report made with another fingerprint is redone."""
        data = {
            "pipeline": self.settings.to_dict(),
            "overrides": asdict(self.overrides) if self.overrides is not None else None,
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "model_sha256": self.model_sha256,
            "use_truth": self.use_truth,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class Outcome:
    """What became of one input; `row` is its cohort-table row when it was analysed or skipped."""

    source: str
    status: Status
    row: dict[str, Any] | None = None
    reason: str = ""  # one line, for a failure
    internal: bool = False  # the failure is ivuscal's, not the input's
    seconds: float = 0.0


_RUNTIMES: dict[tuple, Any] = {}
_RUNTIMES_LOCK = threading.Lock()


def _runtime(config: BatchConfig) -> Any:
    """This worker process's runtime for `config` (created on first use)."""
    from engine.runtimes import create_runtime

    key = (config.backend, str(config.model), config.device, config.precision, config.threads)
    with _RUNTIMES_LOCK:
        if key not in _RUNTIMES:
            _RUNTIMES[key] = create_runtime(config.backend, config.model, device=config.device,
                                            threads=config.threads, precision=config.precision)
        return _RUNTIMES[key]


def _truth_beside(source: Path) -> Any:
    """The simulator truth written beside `source`, or None when there is none."""
    return read_truth_file(source) if truth_paths(source)[0].is_file() else None


def analyse_one(source: str, out_dir: str, config: BatchConfig, fingerprint: str) -> Outcome:
    """Analyse one input into `out_dir/pullbacks/<key>/` unless a verified report is there; never raises."""
    path = Path(source)
    final = report_dir(Path(out_dir), path)
    started = time.perf_counter()
    row = verified_row(final, path, fingerprint)
    if row is not None:
        return Outcome(source, Status.SKIPPED, row, seconds=time.perf_counter() - started)
    tmp: Path | None = None
    try:
        truth = _truth_beside(path) if config.use_truth else None
        runtime = _runtime(config)
        tmp = temporary_dir(final)
        _, summary = report_pullback(
            path, tmp, runtime, config.settings,
            chunk_frames=config.chunk_frames, overrides=config.overrides, truth=truth,
        )
        seconds = time.perf_counter() - started
        row = cohort_row(final.name, path, summary, seconds, runtime.describe())
        write_manifest(tmp, path, fingerprint, row)
        publish(tmp, final, path, fingerprint)
        return Outcome(source, Status.ANALYSED, row, seconds=seconds)
    except InputError as error:
        return Outcome(source, Status.FAILED, reason=str(error), seconds=time.perf_counter() - started)
    except Exception as error:  # a bug or a system failure: recorded, and the batch goes on
        log.exception("internal error on %s", source)
        reason = f"{source}: internal error: {type(error).__name__}: {error}"
        return Outcome(source, Status.FAILED, reason=reason, internal=True, seconds=time.perf_counter() - started)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
