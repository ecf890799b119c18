"""The DICOM node: storage SCP -> spool -> analysis workers -> sender, wired in one place.

    C-STORE in --(written, fsynced)--> spool --queue--> analysers --(SR, PR)--> sender --C-STORE--> destination

On start, pullbacks the spool holds as received are queued for analysis and analysed ones for
sending (when a destination is set), so a restart picks up where the last run stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pynetdicom.transport import ThreadedAssociationServer

from engine.node.analyser import Analysers, RuntimeChoice
from engine.node.scp import ScpConfig, StoreHandler, start_scp
from engine.node.sender import Destination, Sender
from engine.node.spool import JobState, Spool
from engine.pipeline import PipelineSettings

log = logging.getLogger("ivuscal.node")


@dataclass(frozen=True)
class NodeConfig:
    """Everything `ivuscal dicom-node` is told (docs/dicom.md, "DICOM node")."""

    spool: Path
    scp: ScpConfig = ScpConfig()
    destination: Destination | None = None
    runtime: RuntimeChoice = RuntimeChoice()
    settings: PipelineSettings = PipelineSettings()
    workers: int = 1
    retry_s: float = 30.0


class DicomNode:
    """Start with `start()` (or `with`), stop with `close()`; work in progress is finished, nothing is dropped."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.spool = Spool(config.spool)
        self.sender = (Sender(self.spool, config.destination, config.scp.ae_title, config.retry_s)
                       if config.destination else None)
        self.analysers = Analysers(self.spool, config.runtime, config.settings, self._analysed,
                                   n_workers=config.workers)
        self._server: ThreadedAssociationServer | None = None

    def _analysed(self, job: str) -> None:
        if self.sender is not None:
            self.sender.submit(job)

    def start(self) -> Self:
        """Resume the spool, start the workers and the sender, then listen. Raises if the runtime or port fails."""
        self.analysers.start()
        if self.sender is not None:
            self.sender.start()
        resumed = list(self.spool.jobs(JobState.RECEIVED))
        for job in resumed:
            self.analysers.submit(job)
        unsent: list[str] = []
        if self.sender is not None:
            unsent = list(self.spool.jobs(JobState.ANALYSED))
            for job in unsent:
                self.sender.submit(job)
        if resumed or unsent:
            log.info("resumed %d pullback(s) to analyse and %d to send", len(resumed), len(unsent))
        try:
            self._server = start_scp(self.config.scp, StoreHandler(self.spool, self.analysers.submit))
        except Exception:
            self.close()
            raise
        log.info("listening as %s on %s:%d", self.config.scp.ae_title, self.config.scp.host, self.port)
        return self

    @property
    def port(self) -> int:
        """The port actually bound (the configured one, or the one the OS chose for port 0)."""
        return self._server.server_address[1] if self._server is not None else self.config.scp.port

    def close(self) -> None:
        """Stop listening, finish the pullback being analysed, stop the sender (unsent ones stay on disk)."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self.analysers.stop()
        if self.sender is not None:
            self.sender.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
