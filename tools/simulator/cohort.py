"""A synthetic cohort: N patients with 1 to 3 pullbacks each, as DICOM + truth + a manifest.

Every pullback's configuration is sampled (`PullbackConfig.random`) unless an option fixes a
setting; seeds derive from the cohort seed, the patient and the pullback, so a cohort is the
same on every run. File names carry case numbers only, never the (fake) patient identity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.errors import InputError
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


def generate_cohort(out_dir: str | Path, n_patients: int, seed: int, *, n_frames: int | None = None,
                    quiet: bool = True, **fixed) -> Path:
    """Write the cohort under `out_dir`; returns the manifest path (`cohort.json`).

    `fixed` holds `PullbackConfig` fields that every pullback shares (device, fps,
    pullback_rate_mm_s, color, jpeg, label_noise, image_size, ...); the rest are sampled.
    """
    if n_patients < 1:
        raise InputError(f"--patients must be at least 1, got {n_patients}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder: {error.strerror}", source=str(out)) from error
    unknown = set(fixed) - set(PullbackConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown pullback settings: {sorted(unknown)}")
    plan = _plan(n_patients, seed, n_frames, fixed)
    total = sum(cfg.n_frames for runs in plan for cfg, _ in runs)
    patients = []
    with progress("synth", total=total, quiet=quiet) as bar:
        for p, runs in enumerate(plan):
            patient = SyntheticPatient(p, seed)
            entries = []
            for k, (config, run_seed) in enumerate(runs):
                path = out / f"case{p:04d}_run{k + 1}.dcm"
                write_pullback(path, iter_pullback(config, run_seed), patient=patient, series=k + 1,
                               on_chunk=bar.advance)
                npz, lesions = truth_paths(path)
                entries.append({"dicom": path.name, "truth": npz.name, "lesions": lesions.name,
                                "seed": run_seed, "settings": config.to_dict()})
            patients.append({"case": p, "patient_id": patient.patient_id, "pullbacks": entries})
    manifest = {"generator": "ivuscal synth", "seed": seed, "n_patients": n_patients,
                "options": {"n_frames": n_frames, **fixed}, "total_frames": total, "patients": patients}
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=1))
    return path
