"""`ivuscal batch` on a real local Dask cluster: sources, layout, resume, failures, cohort summary, worker loss."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.batch.layout import MANIFEST, PULLBACKS, publish, report_key, temporary_dir, verified_row, write_manifest
from engine.batch.sources import expand_sources
from engine.cli import main
from engine.errors import InputError
from tools.simulator import generate_cohort

IVUSCAL = [sys.executable, "-m", "engine.cli"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny simulator cohort (DICOM + truth), one corrupt file, and a pullback whose name repeats in a subfolder."""
    root = tmp_path_factory.mktemp("cohort")
    generate_cohort(root, 2, seed=5, n_frames=24, image_size=128, color="gray", jpeg=False)
    (root / "broken.dcm").write_text("this is not a DICOM file\n" * 20)
    (root / "site2").mkdir()
    first = sorted(root.glob("case*.dcm"))[0]
    for suffix in (".dcm", ".truth.npz", ".lesions.json"):
        shutil.copy(root / (first.stem + suffix), root / "site2" / (first.stem + suffix))
    return root


def good_inputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.dcm") if p.name != "broken.dcm")


def reports(out: Path) -> list[Path]:
    return sorted((out / PULLBACKS).iterdir())


def read_cohort(out: Path) -> list[dict[str, str]]:
    with open(out / "cohort.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_sources_are_folders_lists_and_files_once_each(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.dcm", "a/b/two.DCM", "a/b/two.truth.npz", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "b" / "IM0001").write_bytes(b"\0" * 128 + b"DICM")  # no suffix, DICOM preamble
    listing = tmp_path / "inputs.txt"
    listing.write_text("# archive\na/one.dcm\n\n" + str(tmp_path / "missing.dcm") + "\n")
    found = expand_sources([tmp_path / "a", listing, tmp_path / "a" / "one.dcm"])
    expected = ["a/b/IM0001", "a/b/two.DCM", "a/one.dcm", "missing.dcm"]
    assert found == [tmp_path / name for name in expected]
    with pytest.raises(InputError, match="no such file or folder"):
        expand_sources([tmp_path / "nowhere"])


def test_equal_file_names_in_two_folders_get_two_report_folders(tmp_path: Path) -> None:
    assert report_key(tmp_path / "x" / "p.dcm") != report_key(tmp_path / "y" / "p.dcm")
    assert report_key(tmp_path / "x" / "p.dcm") == report_key(tmp_path / "x" / "p.dcm")
    assert report_key(tmp_path / "x" / "p.dcm").startswith("p-")


def test_a_report_verifies_only_while_it_is_complete_and_its_input_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "p.dcm"
    source.write_bytes(b"pullback")
    final = tmp_path / "out" / "p"
    tmp = temporary_dir(final)
    (tmp / "summary.json").write_text("{}")
    write_manifest(tmp, source, "fp", {"pullback": "p"})
    assert publish(tmp, final, source, "fp") and not tmp.exists()
    assert verified_row(final, source, "fp") == {"pullback": "p"}
    assert verified_row(final, source, "other settings") is None
    second = temporary_dir(final)  # the same task finished twice: the first complete copy stays
    (second / "summary.json").write_text('{"second": 1}')
    write_manifest(second, source, "fp", {"pullback": "p"})
    assert not publish(second, final, source, "fp") and not second.exists()
    assert (final / "summary.json").read_text() == "{}"
    (final / "summary.json").write_text("{ truncated")
    assert verified_row(final, source, "fp") is None
    (final / "summary.json").write_text("{}")
    (final / "extra.png").write_bytes(b"")
    assert verified_row(final, source, "fp") is None
    (final / "extra.png").unlink()
    os.utime(source, ns=(0, 0))
    assert verified_row(final, source, "fp") is None
    (final / MANIFEST).unlink()
    assert verified_row(final, source, "fp") is None


@pytest.mark.slow
def test_batch_analyses_each_good_pullback_once_reports_the_corrupt_one_and_resumes(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(cohort), "--out", str(out), "--workers", "2", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "broken.dcm" in err[0] and "not a DICOM file" in err[0], err
    assert "1 of" in err[1] and "failures.csv" in err[1]
    good = good_inputs(cohort)
    rows = read_cohort(out)
    assert sorted(r["pullback"] for r in rows) == sorted(report_key(p) for p in good)  # each once, both site2 copies
    assert [p.name for p in reports(out)] == sorted(report_key(p) for p in good)  # no temporaries left
    assert all(r["study_uid"] and r["sop_uid"] and r["backend"] == "onnxruntime" for r in rows)
    assert not {"patient", "name"} & {c for r in rows for c in r}
    with open(out / "failures.csv", newline="") as handle:
        assert [r["input"] for r in csv.DictReader(handle)] == [str(cohort / "broken.dcm")]
    for name in ("cohort.parquet", "cohort_distributions.png", "evaluation.json", "batch.json"):
        assert (out / name).is_file(), name
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert {r["pullback"] for r in evaluation["per_pullback"]} == {r["pullback"] for r in rows}
    assert evaluation["pooled"]["ensemble"]["filtered"]["n_frames"] == sum(int(r["n_frames"]) for r in rows)

    single = tmp_path / "single"  # the batch ran exactly `ivuscal analyze --truth` per pullback
    assert main(["analyze", str(good[0]), "--out", str(single), "--truth", str(good[0]), "--threads", "1",
                 "--quiet"]) == 0
    batch_report = out / PULLBACKS / report_key(good[0])
    assert json.loads((single / "summary.json").read_text()) == json.loads((batch_report / "summary.json").read_text())
    with np.load(single / "calcium_map.npz") as a, np.load(batch_report / "calcium_map.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)

    (batch_report / "frames.csv").write_text("partial")  # a damaged report is redone, the others skipped
    assert main(args) == 2
    record = json.loads((out / "batch.json").read_text())
    assert (record["analysed"], record["skipped"], record["failed"]) == (1, len(good) - 1, 1)
    assert verified_row(batch_report, good[0], record["fingerprint"]) is not None


@pytest.mark.slow
def test_killing_a_worker_mid_batch_loses_and_duplicates_nothing(cohort: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    good = good_inputs(cohort)
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        batch = subprocess.Popen(
            [*IVUSCAL, "batch", *map(str, good), "--out", str(out), "--scheduler", cluster.scheduler_address,
             "--no-truth", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        pids = client.run(os.getpid)
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and batch.poll() is None:
            busy = {w: keys for w, keys in client.processing().items() if any("analyse-" in str(k) for k in keys)}
            victim = next(iter(busy), None)
            time.sleep(0.05)
        assert victim is not None, "no task ever ran"
        os.kill(pids[victim], signal.SIGKILL)  # the worker process dies holding a pullback
        stdout, stderr = batch.communicate(timeout=300)
        assert batch.returncode == 0, stderr
        assert pids[victim] not in client.run(os.getpid).values()  # that process is gone (its nanny started another)

    rows = read_cohort(out)
    assert sorted(r["pullback"] for r in rows) == sorted(report_key(p) for p in good)  # none lost, none twice
    assert [p.name for p in reports(out)] == sorted(report_key(p) for p in good)  # no half-written folder left
    fingerprint = json.loads((out / "batch.json").read_text())["fingerprint"]
    assert all(verified_row(out / PULLBACKS / report_key(p), p, fingerprint) is not None for p in good)
    assert json.loads((out / "batch.json").read_text())["analysed"] == len(good)


def test_gpu_work_on_a_cluster_without_gpu_workers_is_refused(cohort: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        args = ["batch", str(cohort), "--out", str(tmp_path), "--scheduler", cluster.scheduler_address,
                "--device", "cuda", "--quiet"]
        assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "no worker of the cluster offers the resource GPU" in err[-1], err
    assert not (tmp_path / "pullbacks").exists()
