"""A real PACS (Orthanc) around `ivuscal dicom-node`: pullback in by C-STORE, SR and presentation state back out.

1. A C-STORE client sends a generated pullback to the `ivuscal dicom-node` command (a child
   process); the node sends its SR and presentation state to Orthanc, where the REST API finds
   them in the pullback's study, referencing it, with the SR's measurements equal to the analysis.
2. The other way round: the pullback is uploaded to Orthanc, and Orthanc forwards it to the node
   (`POST /modalities/ivuscal/store`, the node declared in Orthanc's DicomModalities).
Under CI=true these tests fail instead of skipping when Orthanc is missing (tests/system_tools.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from engine.dicom_out import codes
from engine.dicom_out.sr import PULLBACK_TRACKING_ID, lesion_tracking_id
from engine.node import DicomNode, NodeConfig
from engine.node.analyser import RuntimeChoice
from engine.node.scp import ScpConfig
from engine.node.sender import Destination
from engine.node.spool import JobState, job_id
from engine.pipeline import PipelineSettings
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, write_pullback
from tests.dicom_network import c_echo, c_store, free_port, wait_for
from tests.orthanc import Orthanc, running_orthanc
from tests.tiny_model import PIXEL_SPACING_MM, calcium_frames, tiny_ensemble

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"
NODE_AET = "IVUSCAL"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_ensemble(tmp_path_factory.mktemp("model") / "tiny.safetensors", calcium_frames())


@pytest.fixture(scope="module")
def node_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, node_port: int) -> Iterator[Orthanc]:
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), {"ivuscal": (NODE_AET, "127.0.0.1", node_port)}) as pacs:
        yield pacs


def new_pullback(folder: Path, seed: int) -> Path:
    return write_pullback(folder / f"pullback{seed}.dcm", calcium_frames(seed=seed), pixel_spacing_mm=PIXEL_SPACING_MM,
                          frame_time_ms=40.0, pullback_rate_mm_s=5.0)


def outputs_in_orthanc(orthanc: Orthanc, source: pydicom.Dataset) -> dict[str, dict]:
    """The SR and presentation state Orthanc holds in the source's study, by SOP class (waits for both)."""
    def found() -> dict[str, dict]:
        return {tags["SOPClassUID"]: tags for tags in orthanc.instances_of_study(source.StudyInstanceUID)
                if tags["SOPClassUID"] in (SR_CLASS, GSPS_CLASS)}

    wait_for(lambda: len(found()) == 2, timeout_s=180, what="the SR and presentation state in Orthanc")
    return found()


def check_outputs(orthanc: Orthanc, source_path: Path, summary_path: Path) -> None:
    """Both outputs reference the source; the SR's lesion and pullback measurements equal summary.json."""
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    outputs = outputs_in_orthanc(orthanc, source)
    pr = outputs[GSPS_CLASS]
    assert pr["ReferencedSeriesSequence"][0]["ReferencedImageSequence"][0]["ReferencedSOPInstanceUID"] == \
        source.SOPInstanceUID
    sr = hd.sr.srread(pydicom.filebase.DicomBytesIO(orthanc.file(outputs[SR_CLASS]["_id"])))
    assert sr.PatientID == PATIENT_ID and str(sr.PatientName) == PATIENT_NAME
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    summary = json.loads(summary_path.read_text())
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    assert set(groups) == {PULLBACK_TRACKING_ID, *(lesion_tracking_id(i) for i in range(len(summary["lesions"])))}
    assert summary["lesions"], "the tiny model should find the drawn arc"
    expected = [(PULLBACK_TRACKING_ID, summary["calcium_length_mm"], summary["max_arc_deg"])]
    expected += [(lesion_tracking_id(i), lesion["length_mm"], lesion["max_arc_deg"])
                 for i, lesion in enumerate(summary["lesions"])]
    for tracking_id, length_mm, max_arc_deg in expected:
        (length,) = groups[tracking_id].get_measurements(name=codes.CALCIUM_LENGTH)
        (arc,) = groups[tracking_id].get_measurements(name=codes.ARC_OF_CALCIUM)
        assert float(length.value) == pytest.approx(length_mm) and float(arc.value) == pytest.approx(max_arc_deg)


def test_pullback_sent_to_the_node_command_comes_back_into_orthanc(
    orthanc: Orthanc, weights: Path, tmp_path: Path
) -> None:
    spool, port = tmp_path / "spool", free_port()
    command = [sys.executable, "-m", "engine.cli", "dicom-node", "--spool", str(spool), "--port", str(port),
               "--ae-title", NODE_AET, "--allow", "CONSOLE",
               "--store-to", f"{orthanc.ae_title}@127.0.0.1:{orthanc.dicom_port}",
               "--retry-s", "1", "--model", str(weights), "--backend", "torch", "--threads", "1",
               "--window-frames", "5", "--window-alines", "9"]
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: node.poll() is not None or c_echo(port, calling="CONSOLE") == 0, timeout_s=120,
                 what="the node answering C-ECHO")
        assert node.poll() is None, log_path.read_text()
        pullback = new_pullback(tmp_path, seed=11)
        assert c_store(pullback, port, calling="CONSOLE") == 0x0000
        job = job_id(pydicom.dcmread(pullback, stop_before_pixels=True).SOPInstanceUID)
        check_outputs(orthanc, pullback, spool / job / "report" / "summary.json")
    finally:
        node.terminate()
        node.wait(timeout=60)
    assert node.returncode == 0
    text = log_path.read_text()
    assert f"pullback {job}: SR and presentation state sent to ORTHANC" in text
    assert PATIENT_ID not in text and PATIENT_NAME.split("^")[0] not in text


def test_orthanc_forwards_a_stored_pullback_to_the_node(
    orthanc: Orthanc, weights: Path, node_port: int, tmp_path: Path
) -> None:
    pullback = new_pullback(tmp_path, seed=12)
    uploaded = orthanc.rest("/instances", pullback.read_bytes())
    config = NodeConfig(
        spool=tmp_path / "spool",
        scp=ScpConfig(port=node_port, ae_title=NODE_AET, allowed_callers=(orthanc.ae_title,)),
        destination=Destination(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port),
        runtime=RuntimeChoice(backend="torch", model=weights, threads=1),
        settings=PipelineSettings(window_frames=5, window_alines=9),
        retry_s=1.0,
    )
    with DicomNode(config) as node:
        answer = orthanc.rest("/modalities/ivuscal/store", {"Resources": [uploaded["ID"]], "Synchronous": True})
        assert answer["FailedInstancesCount"] == 0 and answer["InstancesCount"] == 1
        job = job_id(pydicom.dcmread(pullback, stop_before_pixels=True).SOPInstanceUID)
        check_outputs(orthanc, pullback, node.spool.report_dir(job) / "summary.json")
        wait_for(lambda: node.spool.state(job) is JobState.SENT, what="the job marked sent")
