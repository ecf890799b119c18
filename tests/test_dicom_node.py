"""`ivuscal dicom-node` over real associations: store -> analyse -> SR + PR sent on; refusals, failures, restart, TLS.

The destination is a real pynetdicom storage SCP (tests/dicom_network.py); the PACS version of
these tests, with Orthanc, is tests/test_orthanc.py.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from engine.node import DicomNode, NodeConfig
from engine.node.analyser import RuntimeChoice
from engine.node.scp import ScpConfig, StoreHandler, start_scp
from engine.node.sender import Destination
from engine.node.spool import JobState, Spool, job_id
from engine.pipeline import PipelineSettings
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, ivus_frames, write_pullback
from tests.dicom_network import c_echo, c_store, free_port, storage_scp, wait_for
from tests.tiny_model import PIXEL_SPACING_MM, calcium_frames, tiny_ensemble

SETTINGS = PipelineSettings(window_frames=5, window_alines=9)
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR Storage
GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_ensemble(tmp_path_factory.mktemp("model") / "tiny.safetensors", calcium_frames())


@pytest.fixture(scope="module")
def pullback(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pullback(tmp_path_factory.mktemp("dcm") / "pullback.dcm", calcium_frames(),
                          pixel_spacing_mm=PIXEL_SPACING_MM, frame_time_ms=40.0, pullback_rate_mm_s=5.0)


def node_config(spool: Path, weights: Path, destination_port: int | None, **scp: object) -> NodeConfig:
    return NodeConfig(
        spool=spool,
        scp=ScpConfig(port=0, **scp),
        destination=Destination("DEST", "127.0.0.1", destination_port) if destination_port else None,
        runtime=RuntimeChoice(backend="torch", model=weights, threads=1),
        settings=SETTINGS,
        retry_s=0.3,
    )


@pytest.fixture
def destination() -> Iterator[tuple[int, list]]:
    with storage_scp() as scp:
        yield scp


@pytest.fixture
def node(tmp_path: Path, weights: Path, destination: tuple[int, list]) -> Iterator[DicomNode]:
    with DicomNode(node_config(tmp_path / "spool", weights, destination[0], allowed_callers=("TESTSCU",))) as running:
        yield running


def test_stored_pullback_comes_back_as_sr_and_presentation_state(
    node: DicomNode, destination: tuple[int, list], pullback: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivuscal.node")
    assert c_echo(node.port) == 0x0000
    assert c_store(pullback, node.port) == 0x0000
    _, received = destination
    wait_for(lambda: len(received) == 2, what="the SR and presentation state at the destination")
    source = pydicom.dcmread(pullback, stop_before_pixels=True)
    by_class = {ds.SOPClassUID: ds for ds in received}
    assert set(by_class) == {SR_CLASS, GSPS_CLASS}
    for ds in received:
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == PATIENT_ID
    job = job_id(source.SOPInstanceUID)
    wait_for(lambda: node.spool.state(job) is JobState.SENT, what="the job marked sent")
    kept = node.spool.report_dir(job)
    assert (kept / "calcium_sr.dcm").is_file() and (kept / "calcium_arcs_pr.dcm").is_file()
    assert (kept / "summary.json").is_file()
    log = caplog.text
    assert PATIENT_NAME.split("^")[0] not in log and PATIENT_ID not in log
    node_lines = [r.getMessage() for r in caplog.records if r.name == "ivuscal.node" and job in r.getMessage()]
    sent = f"SR and presentation state sent to DEST@127.0.0.1:{destination[0]}"
    assert [line.split(": ")[1] for line in node_lines] == ["received from TESTSCU", "analysed", sent]


def test_same_instance_twice_is_kept_once(node: DicomNode, pullback: Path) -> None:
    assert c_store(pullback, node.port) == 0x0000
    assert c_store(pullback, node.port) == 0x0000
    assert len(list(node.spool.root.glob("*/pullback.dcm"))) == 1


def test_caller_outside_the_allow_list_is_refused(node: DicomNode, pullback: Path) -> None:
    assert c_echo(node.port, calling="INTRUDER") is None
    assert c_store(pullback, node.port, calling="INTRUDER") is None


def test_non_ultrasound_dataset_gets_a_failure_status(node: DicomNode, tmp_path: Path) -> None:
    ct = pydicom.dcmread(write_pullback(tmp_path / "ct.dcm", ivus_frames(2), modality="CT"))
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert c_store(ct, node.port) == 0xC000
    assert list(node.spool.root.glob("*/pullback.dcm")) == []


@pytest.mark.parametrize("kind", ["single frame", "frames missing"])
def test_ultrasound_that_is_not_a_readable_pullback_is_stored_and_reported_not_analysable(
    node: DicomNode, tmp_path: Path, kind: str
) -> None:
    if kind == "single frame":
        path = write_pullback(tmp_path / "one.dcm", ivus_frames(1), number_of_frames=1)
    else:
        path = write_pullback(tmp_path / "short.dcm", ivus_frames(4), number_of_frames=9)
    assert c_store(path, node.port) == 0x0000
    job = job_id(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    wait_for(lambda: node.spool.state(job) is JobState.NOT_ANALYSABLE, what="the not-analysable state")
    assert c_echo(node.port) == 0x0000  # and the node keeps serving


def test_handler_failures_answer_a_named_status_not_0xC211(
    tmp_path: Path, pullback: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(job: str) -> None:
        raise RuntimeError("bug in the queue")

    spool = Spool(tmp_path / "spool")
    server = start_scp(ScpConfig(port=0), StoreHandler(spool, broken))
    try:
        port = server.server_address[1]
        assert c_store(pullback, port) == 0xC001
        assert "bug in the queue" in caplog.text
        job = job_id(pydicom.dcmread(pullback, stop_before_pixels=True).SOPInstanceUID)
        shutil.rmtree(spool.root / job)
        (spool.root / job).write_text("a file where the job's folder should be")  # the spool cannot be written
        assert c_store(pullback, port) == 0xA700
    finally:
        server.shutdown()


def test_restart_resumes_unanalysed_and_unsent_pullbacks(tmp_path: Path, weights: Path, pullback: Path) -> None:
    port = free_port()  # the destination is down: nothing listens here yet
    spool_dir = tmp_path / "spool"
    with DicomNode(node_config(spool_dir, weights, port)) as node:
        assert c_store(pullback, node.port) == 0x0000
        job = job_id(pydicom.dcmread(pullback, stop_before_pixels=True).SOPInstanceUID)
        wait_for(lambda: node.spool.state(job) is JobState.ANALYSED, what="the analysis")
    second = write_pullback(tmp_path / "second.dcm", calcium_frames(seed=2), pixel_spacing_mm=PIXEL_SPACING_MM)
    second_job = job_id(pydicom.dcmread(second, stop_before_pixels=True).SOPInstanceUID)
    Spool(spool_dir).store(second_job, second.read_bytes())  # received, then the node stopped before analysing
    assert Spool(spool_dir).state(job) is JobState.ANALYSED  # not sent: the destination was down
    with storage_scp(port) as (_, received), DicomNode(node_config(spool_dir, weights, port)) as node:
        wait_for(lambda: len(received) == 4, what="both pullbacks' outputs after the restart")
        wait_for(lambda: node.spool.state(second_job) is JobState.SENT and node.spool.state(job) is JobState.SENT)


def test_destination_down_then_up_is_retried_without_restart(tmp_path: Path, weights: Path, pullback: Path) -> None:
    port = free_port()
    with DicomNode(node_config(tmp_path / "spool", weights, port)) as node:
        assert c_store(pullback, node.port) == 0x0000
        job = job_id(pydicom.dcmread(pullback, stop_before_pixels=True).SOPInstanceUID)
        wait_for(lambda: node.spool.state(job) is JobState.ANALYSED, what="the analysis")
        with storage_scp(port) as (_, received):
            wait_for(lambda: len(received) == 2, what="the retried sending")
        assert node.spool.state(job) is JobState.SENT


def test_tls_only_node_answers_tls_and_refuses_plain(tmp_path: Path, weights: Path) -> None:
    import ssl

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    from engine.node.cli import tls_context

    config = node_config(tmp_path / "spool", weights, None, tls=tls_context(cert, key, None))
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    with DicomNode(config) as node:
        assert c_echo(node.port, tls_args=(client, "localhost")) == 0x0000
        assert c_echo(node.port) is None


def test_destination_is_parsed_or_refused() -> None:
    from engine.errors import InputError

    assert Destination.parse("ORTHANC@127.0.0.1:4242") == Destination("ORTHANC", "127.0.0.1", 4242)
    for bad in ("ORTHANC@127.0.0.1", "127.0.0.1:4242", "A" * 17 + "@h:1", "X@h:70000"):
        with pytest.raises(InputError, match="AET@HOST:PORT"):
            Destination.parse(bad)


def test_frames_are_analysed_as_by_analyze(node: DicomNode, pullback: Path, weights: Path, tmp_path: Path) -> None:
    """The node's report equals `ivuscal analyze` of the same file with the same settings."""
    from engine.cli import main

    assert c_store(pullback, node.port) == 0x0000
    job = job_id(pydicom.dcmread(pullback, stop_before_pixels=True).SOPInstanceUID)
    wait_for(lambda: node.spool.state(job) in (JobState.ANALYSED, JobState.SENT), what="the analysis")
    args = [str(pullback), "--out", str(tmp_path / "cli"), "--model", str(weights), "--backend", "torch", "--quiet",
            "--window-frames", "5", "--window-alines", "9", "--threads", "1"]
    assert main(["analyze", *args]) == 0
    node_map = node.spool.report_dir(job) / "calcium_map.npz"
    with np.load(tmp_path / "cli" / "calcium_map.npz") as cli, np.load(node_map) as ours:
        np.testing.assert_array_equal(cli["calcium"], ours["calcium"])


@pytest.mark.parametrize("args, words", [
    (["--store-to", "ORTHANC@127.0.0.1"], "AET@HOST:PORT"),
    (["--ae-title", "A" * 17], "1 to 16 characters"),
    (["--tls-cert", __file__], "--tls-cert and --tls-key"),
])
def test_bad_options_exit_2_naming_the_problem(
    args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    assert main(["dicom-node", "--spool", str(tmp_path / "spool"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err
