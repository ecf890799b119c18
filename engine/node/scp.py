"""The storage SCP: C-ECHO, and C-STORE of ultrasound images into the spool before the store is acknowledged.

Presentation contexts: Ultrasound Multi-frame and Ultrasound Image Storage with every transfer
syntax pynetdicom knows (the reader decides later whether it can decode them), plus pynetdicom's
usual storage SOP classes with the uncompressed syntaxes, so that a sender of other images gets
a C-STORE failure status that says why rather than a refused association. Statuses (PS3.4 B.2.3):
- 0x0000 stored (or already stored: the same SOP Instance UID is kept once);
- 0xA700 out of resources: the spool could not be written (nothing acknowledged);
- 0xA900 the dataset's SOP Class UID differs from the presentation context's;
- 0xC000 not an ultrasound image (ivuscal analyses IVUS pullbacks only);
- 0xC210 the dataset cannot be decoded;
- 0xC001 any other failure inside the handler, logged with its traceback (never pynetdicom's
  silent 0xC211 fallback).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # names created at import time, unknown to stubs
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from engine.node.spool import Spool, job_id

log = logging.getLogger("ivuscal.node")

ULTRASOUND = (UltrasoundMultiFrameImageStorage, UltrasoundImageStorage)


@dataclass(frozen=True)
class ScpConfig:
    """Where the node listens and whom it accepts (`ivuscal dicom-node` options; docs/dicom.md)."""

    host: str = "127.0.0.1"
    port: int = 11112
    ae_title: str = "IVUSCAL"
    allowed_callers: tuple[str, ...] = ()  # calling AE titles accepted; empty: any
    tls: ssl.SSLContext | None = None


def status(code: int, comment: str) -> Dataset:
    """A C-STORE response status with its Error Comment (LO: at most 64 characters)."""
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


class StoreHandler:
    """Handles EVT_C_STORE: validate, write to the spool, then call `on_received(job)`."""

    def __init__(self, spool: Spool, on_received: Callable[[str], None]) -> None:
        self.spool, self.on_received = spool, on_received

    def __call__(self, event: evt.Event) -> Dataset | int:
        try:
            return self._store(event)
        except OSError as error:
            log.error("a received dataset could not be written to the spool (%s); refused", error.strerror or error)
            return status(0xA700, "out of resources: cannot write the dataset to disk")
        except Exception:  # a bug: answer a failure that says so, and keep serving
            log.exception("C-STORE handler failed; refused the dataset")
            return status(0xC001, "internal error in ivuscal dicom-node (see its log)")

    def _store(self, event: evt.Event) -> Dataset | int:
        sop_class = event.context.abstract_syntax
        if sop_class not in ULTRASOUND:
            log.warning("refused a %s dataset: not ultrasound", sop_class.name)
            return status(0xC000, "not an ultrasound image: ivuscal analyses IVUS pullbacks")
        try:
            dataset = event.dataset
            sop_instance_uid = str(dataset.SOPInstanceUID)
            declared = str(dataset.get("SOPClassUID", sop_class))
        except Exception as error:  # the bytes are not a dataset pydicom can parse
            log.warning("refused a dataset that cannot be decoded (%s)", type(error).__name__)
            return status(0xC210, "cannot decode the dataset")
        if declared != sop_class:
            log.warning("refused a dataset whose SOP class differs from its presentation context")
            return status(0xA900, "SOP Class UID does not match the presentation context")
        job = job_id(sop_instance_uid)
        if not self.spool.store(job, event.encoded_dataset(include_meta=True)):
            log.info("pullback %s: already received; kept the first copy", job)
            return 0x0000
        log.info("pullback %s: received from %s", job, event.assoc.requestor.ae_title)
        self.on_received(job)
        return 0x0000


def _log_rejected(event: evt.Event) -> None:
    log.warning("association from %s refused (calling AE title not allowed)", event.assoc.requestor.ae_title)


def start_scp(config: ScpConfig, handler: StoreHandler) -> ThreadedAssociationServer:
    """Start listening (non-blocking); the caller shuts the returned server down."""
    ae = AE(ae_title=config.ae_title)
    ae.add_supported_context(Verification)
    for sop_class in ULTRASOUND:
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    for context in StoragePresentationContexts:
        if context.abstract_syntax is None:
            raise RuntimeError("pynetdicom listed a storage presentation context without an abstract syntax")
        if context.abstract_syntax not in ULTRASOUND:
            ae.add_supported_context(context.abstract_syntax)
    ae.require_calling_aet = list(config.allowed_callers)
    handlers: list[evt.EventHandlerType] = [
        (evt.EVT_C_STORE, handler), (evt.EVT_C_ECHO, lambda event: 0x0000), (evt.EVT_REJECTED, _log_rejected)
    ]
    server = ae.start_server((config.host, config.port), block=False, evt_handlers=handlers, ssl_context=config.tls)
    if server is None:
        raise RuntimeError("pynetdicom returned no server from a non-blocking start_server")
    return server
