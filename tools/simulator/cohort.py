"""A synthetic cohort: N patients with 1 to 3 pullbacks each, as DICOM + truth + a manifest.

Every pullback's configuration is sampled (`PullbackConfig.random`) unless an option fixes a
setting; seeds derive from the cohort seed, the patient and the pullback, so a cohort is the
same on every run. File names carry case numbers only, never the (fake) patient identity.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.json_output import write_json
from engine.progress import progress
from tools.simulator.config import PullbackConfig
from tools.simulator.dicom_writer import SyntheticPatient, write_pullback
from tools.simulator.pullback import iter_pullback
from tools.simulator.truth import truth_paths

MANIFEST_NAME = "cohort.json"


def _plan(n_patients: int, seed: int, n_frames: int | None, fixed: dict) -> list[list[tuple[PullbackConfig, int]]]:
    plan = []
    for p in range(n_patients):
        rng = np.random.default_rng([seed, p])
        runs = []
        for k in range(int(rng.integers(1, 4))):
            config = PullbackConfig.random(rng, n_frames=n_frames, **fixed)
            run_seed = int(np.random.SeedSequence([seed, p, k]).generate_state(1)[0])
            runs.append((config, run_seed))
        plan.append(runs)
    return plan


def _write_run(task: tuple[Path, PullbackConfig, int, SyntheticPatient, int]) -> int:
    """Generate and write one pullback (runs in a worker process too); returns its frame count."""
    path, config, run_seed, patient, series = task
    write_pullback(path, iter_pullback(config, run_seed), patient=patient, series=series)
    return config.n_frames


def generate_cohort(out_dir: str | Path, n_patients: int, seed: int, *, n_frames: int | None = None,
                    quiet: bool = True, workers: int = 1, **fixed) -> Path:
    """Write the cohort under `out_dir`; returns the manifest path (`cohort.json`).

    `fixed` holds `PullbackConfig` fields that every pullback shares (device, fps,
    pullback_rate_mm_s, color, jpeg, label_noise, image_size, appearance, ...) or `devices`
    (the styles to draw from); the rest are sampled.
    `workers` > 1 generates pullbacks in that many processes (same files as with one).
    """
    if n_patients < 1:
        raise InputError(f"--patients must be at least 1, got {n_patients}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder: {error.strerror}", source=str(out)) from error
    unknown = set(fixed) - set(PullbackConfig.__dataclass_fields__) - {"devices"}
    if unknown:
        raise InputError(f"unknown pullback settings: {sorted(unknown)}")
    plan = _plan(n_patients, seed, n_frames, fixed)
    tasks, patients = [], []
    for p, runs in enumerate(plan):
        patient = SyntheticPatient(p, seed)
        entries = []
        for k, (config, run_seed) in enumerate(runs):
            path = out / f"case{p:04d}_run{k + 1}.dcm"
            tasks.append((path, config, run_seed, patient, k + 1))
            npz, lesions = truth_paths(path)
            entries.append({"dicom": path.name, "truth": npz.name, "lesions": lesions.name,
                            "seed": run_seed, "settings": config.to_dict()})
        patients.append({"case": p, "patient_id": patient.patient_id, "pullbacks": entries})
    total = sum(task[1].n_frames for task in tasks)
    with progress("synth", total=total, quiet=quiet) as bar:
        if workers == 1:
            for task in tasks:
                bar.advance(_write_run(task))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
                for done in pool.map(_write_run, tasks):
                    bar.advance(done)
    manifest = {"generator": "ivuscal synth", "seed": seed, "n_patients": n_patients,
                "options": {"n_frames": n_frames, **fixed}, "total_frames": total, "patients": patients}
    path = out / MANIFEST_NAME
    write_json(path, manifest, indent=1)
    return path
