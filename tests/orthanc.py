"""A real Orthanc PACS for tests: its own temporary configuration, storage and loopback ports, and its REST API.

Orthanc (Debian package `orthanc`, scripts/system-packages.txt) runs as a child process with no
plugins and no authentication; HTTP answers only on loopback (RemoteAccessAllowed false). Orthanc
1.10 has no option to bind its DICOM port to loopback only, so it listens on a random free port for
the few seconds of the test.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.dicom_network import free_port
from tests.system_tools import require_program

AE_TITLE = "ORTHANC"


@dataclass
class Orthanc:
    """A running Orthanc: its DICOM AE and port, and a small REST client on its HTTP port."""

    dicom_port: int
    http_port: int
    log_path: Path
    ae_title: str = AE_TITLE

    def rest(self, path: str, body: bytes | dict | str | None = None) -> Any:
        """GET (no body) or POST `body` (dict as JSON) to the REST API; the decoded JSON answer."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data)
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def instances_of_study(self, study_instance_uid: str) -> list[dict]:
        """Simplified tags of every instance Orthanc holds in that study."""
        found = self.rest("/tools/find", {"Level": "Instance", "Query": {"StudyInstanceUID": study_instance_uid}})
        return [self.rest(f"/instances/{orthanc_id}/simplified-tags") | {"_id": orthanc_id} for orthanc_id in found]

    def file(self, orthanc_id: str) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/instances/{orthanc_id}/file")
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.read()


@contextmanager
def running_orthanc(folder: Path, modalities: dict[str, tuple[str, str, int]] | None = None) -> Iterator[Orthanc]:
    """Start Orthanc with a configuration written under `folder`; stop it on exit (skips if Orthanc is absent)."""
    binary = require_program("Orthanc", "orthanc")
    folder.mkdir(parents=True, exist_ok=True)
    orthanc = Orthanc(dicom_port=free_port(), http_port=free_port(), log_path=folder / "orthanc.log")
    config = {
        "Name": "ivuscal-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "DicomAet": AE_TITLE,
        "DicomPort": orthanc.dicom_port,
        "HttpPort": orthanc.http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowEcho": True,
        "DicomCheckCalledAet": False,
        "DicomModalities": {name: list(modality) for name, modality in (modalities or {}).items()},
        "SaveJobs": False,
        "ConcurrentJobs": 1,
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    with open(orthanc.log_path, "w") as log:
        process = subprocess.Popen([binary, str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        _wait_until_up(orthanc, process)
        yield orthanc
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait_until_up(orthanc: Orthanc, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {process.returncode}: {orthanc.log_path.read_text()[-2000:]}")
        try:
            orthanc.rest("/system")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer within {timeout_s:.0f} s: {orthanc.log_path.read_text()[-2000:]}")
