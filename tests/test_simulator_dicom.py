"""Simulator DICOM output: valid IVUS multi-frame files readable by plain pydicom and by the
engine's reader, native and JPEG, deterministic, with a fake identity that stays inside the file."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGBaseline8Bit

from engine.cli import main
from engine.dicom import open_pullback
from tools.simulator import PullbackConfig, SyntheticPatient, iter_pullback, simulate_pullback, write_pullback

SMALL = dict(n_frames=6, image_size=128)


def test_native_gray_file_is_a_valid_ivus_multiframe(tmp_path):
    sim = simulate_pullback(PullbackConfig(**SMALL, pullback_rate_mm_s=1.0, fps=60.0), seed=1)
    path = write_pullback(tmp_path / "p.dcm", sim, patient=SyntheticPatient(3, 77))
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1" and ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.Modality == "IVUS" and ds.IVUSAcquisition == "MOTOR_PULLBACK"
    assert float(ds.IVUSPullbackRate) == 1.0
    assert abs(float(ds.FrameTime) - 1000 / 60) < 1e-3 and ds.FrameIncrementPointer == 0x00181063
    assert int(ds.NumberOfFrames) == 6 and ds.PhotometricInterpretation == "MONOCHROME2"
    region = ds.SequenceOfUltrasoundRegions[0]
    assert region.PhysicalUnitsXDirection == 3 and region.PhysicalUnitsYDirection == 3
    assert abs(region.PhysicalDeltaX * 10 - sim.calibration.pixel_spacing_mm[1]) < 1e-9
    assert (region.ReferencePixelY0, region.ReferencePixelX0) == sim.calibration.centre_rc
    assert ds.Manufacturer and ds.ManufacturerModelName
    assert str(ds.PatientName) == "SYNTHETIC^FAKEPATIENT0003" and ds.PatientID == "FAKEID-000077-0003"
    assert np.array_equal(ds.pixel_array, sim.frames)


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_jpeg_baseline_export_decodes_close_to_the_frames(tmp_path, color):
    sim = simulate_pullback(PullbackConfig(**SMALL, color=color, jpeg=True, jpeg_quality=92), seed=2)
    ds = pydicom.dcmread(write_pullback(tmp_path / "j.dcm", sim))
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == ("YBR_FULL_422" if color == "rgb" else "MONOCHROME2")
    assert ds.LossyImageCompression == "01"
    decoded = ds.pixel_array  # pydicom converts YBR to RGB
    assert decoded.shape == sim.frames.shape
    assert np.abs(decoded.astype(int) - sim.frames).mean() < 4.0


def test_streamed_write_equals_in_memory_write_and_is_deterministic(tmp_path):
    config = PullbackConfig(**SMALL, color="rgb")
    a = write_pullback(tmp_path / "a.dcm", simulate_pullback(config, 5))
    b = write_pullback(tmp_path / "b.dcm", iter_pullback(config, 5))
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.truth.npz").exists() and (tmp_path / "b.lesions.json").exists()


def test_output_reads_back_through_the_engine_reader(tmp_path):
    sim = simulate_pullback(PullbackConfig(**SMALL, jpeg=True, jpeg_quality=95), seed=6)
    with open_pullback(write_pullback(tmp_path / "e.dcm", sim)) as pullback:
        info = pullback.info
        assert (info.n_frames, info.rows, info.cols) == (6, 128, 128)
        assert info.calibration.center_rc == sim.calibration.centre_rc
        assert np.allclose(info.calibration.pixel_spacing_mm, sim.calibration.pixel_spacing_mm)
        assert info.calibration.pullback_rate_mm_s == 0.5 and not info.calibration.defaulted
        frames = np.concatenate([chunk for _, chunk in pullback.iter_chunks(4)])
    assert np.abs(frames.astype(int) - sim.frames).mean() < 4.0


def test_synth_command_writes_a_cohort_and_keeps_the_identity_in_the_dicom(tmp_path, capsys):
    out = tmp_path / "cohort"
    args = ["synth", "--out", str(out), "--patients", "2", "--seed", "9", "--frames", "5", "--image-size", "128",
            "--format", "native", "--label-noise", "--quiet"]
    assert main(args) == 0
    manifest = json.loads((out / "cohort.json").read_text())
    assert manifest["seed"] == 9 and len(manifest["patients"]) == 2
    names = []
    for patient in manifest["patients"]:
        assert 1 <= len(patient["pullbacks"]) <= 3
        for entry in patient["pullbacks"]:
            assert entry["settings"]["n_frames"] == 5 and entry["settings"]["label_noise"]
            ds = pydicom.dcmread(out / entry["dicom"])
            assert ds.PatientID == patient["patient_id"]
            assert (out / entry["truth"]).exists() and (out / entry["lesions"]).exists()
            names.append(str(ds.PatientName))
    for path in out.iterdir():  # identities live in the DICOM headers (and the manifest's ids) only
        if path.suffix != ".dcm":
            assert not any(name.encode() in path.read_bytes() for name in names)
        assert all(name not in path.name for name in names)
    assert main(args[:2] + [str(tmp_path / "again"), *args[3:]]) == 0
    assert (tmp_path / "again" / "case0001_run1.dcm").read_bytes() == (out / "case0001_run1.dcm").read_bytes()


def test_synth_command_rejects_bad_options_with_status_2(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--patients", "0"]) == 2
    assert "--patients" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "y"), "--frames", "0"]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["synth", "--out", str(blocker / "sub"), "--patients", "1", "--frames", "2"]) == 2
