"""Analysis workers: take received pullbacks from a queue, one at a time per worker, and write their outputs.

Each worker thread owns its inference runtime (created in the thread, used only there). A pullback
that the reader refuses (not a pullback, undecodable, ...) is marked not analysable; any other
failure is logged with its traceback and marked failed; the worker goes on with the next one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.commands.analyze import CHUNK_FRAMES
from engine.errors import InputError
from engine.node.spool import JobState, Spool
from engine.pipeline import PipelineSettings

log = logging.getLogger("ivuscal.node")

STOP = None  # queue sentinel: one per worker


@dataclass(frozen=True)
class RuntimeChoice:
    """What `create_runtime` is given (runtime_options of the command line)."""

    backend: str = "auto"
    model: Path | None = None
    device: str | None = None
    precision: str | None = None
    threads: int | None = None

    def create(self) -> Any:
        from engine.runtimes import create_runtime

        return create_runtime(self.backend, self.model, device=self.device, threads=self.threads,
                              precision=self.precision)


class Analysers:
    """`n_workers` threads draining one queue of job ids; `on_analysed(job)` is called after each success."""

    def __init__(
        self,
        spool: Spool,
        runtime: RuntimeChoice,
        settings: PipelineSettings,
        on_analysed: Callable[[str], None],
        *,
        n_workers: int = 1,
        chunk_frames: int = CHUNK_FRAMES,
    ) -> None:
        self.spool, self.runtime, self.settings = spool, runtime, settings
        self.on_analysed = on_analysed
        self.chunk_frames = chunk_frames
        self.jobs: queue.Queue[str | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name=f"ivuscal-analyser-{i}", daemon=True)
                         for i in range(n_workers)]
        self._ready = threading.Barrier(n_workers + 1)
        self._startup_error: Exception | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Start the workers; raises what creating a runtime raised (bad model, missing backend)."""
        for thread in self._threads:
            thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self.stop()
            raise self._startup_error

    def submit(self, job: str) -> None:
        self.jobs.put(job)

    def stop(self, timeout_s: float = 600.0) -> None:
        """Let each worker finish the pullback it is on, then end (queued ones stay received on disk)."""
        self._stopping.set()
        for _ in self._threads:
            self.jobs.put(STOP)
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("analysis worker %s still busy after %.0f s; leaving it", thread.name, timeout_s)

    def _run(self) -> None:
        try:
            runtime = self.runtime.create()
        except Exception as error:  # reported to start() in the main thread
            self._startup_error = error
            self._ready.wait()
            return
        self._ready.wait()
        if self._startup_error is not None:
            return
        while (job := self.jobs.get()) is not STOP and not self._stopping.is_set():
            self._analyse(job, runtime)

    def _analyse(self, job: str, runtime: Any) -> None:
        from engine.commands.analyze import report_pullback

        path = self.spool.pullback(job)
        try:
            result, summary = report_pullback(path, self.spool.report_dir(job), runtime, self.settings,
                                              chunk_frames=self.chunk_frames, dicom_outputs=True)
        except InputError as error:
            reason = str(error).removeprefix(f"{path}: ")
            self.spool.set_state(job, JobState.NOT_ANALYSABLE, reason)
            log.warning("pullback %s: not analysable: %s", job, reason)
            return
        except Exception as error:  # a bug: keep the node serving, keep the file, say so loudly
            self.spool.set_state(job, JobState.FAILED, f"{type(error).__name__}: {error}")
            log.exception("pullback %s: analysis failed (internal error)", job)
            return
        self.spool.set_state(job, JobState.ANALYSED)
        log.info("pullback %s: analysed: %d frames, %d lesion(s), max arc %.0f deg, calcium score (arc points) %s",
                 job, result.n_frames, len(summary["lesions"]), summary["max_arc_deg"],
                 summary["score"]["total_assessed"])
        self.on_analysed(job)
