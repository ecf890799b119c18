"""The whole recipe: data -> patient-level folds -> one member per fold -> scores -> saved ensemble.

The fold models are the ensemble (as in the study): member k trains on the patients outside
fold k and stops early on fold k. Scores: out-of-fold (each pullback judged by the member that
never saw its patient) and the ensemble on a separate test cohort generated with another seed.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from engine.filter import STUDY_WINDOW
from engine.machine import cpu_model, git_commit
from engine.model.network import count_parameters, flops_per_frame
from engine.model.weights import LoadedEnsemble, save_ensemble
from training.cache import PolarCache
from training.cohort import prepare_cache
from training.evaluate import (
    member_predictions,
    out_of_fold_predictions,
    score_predictions,
)
from training.folds import patient_folds
from training.presets import Preset
from training.trainer import train_member
from training.transforms import AUGMENTATIONS

log = logging.getLogger("training")


def run_training(
    preset: Preset, work_dir: Path, out: Path, quiet: bool = True, command: str = ""
) -> LoadedEnsemble:
    """Run `preset` with its data and checkpoints under `work_dir`; save the ensemble to `out`.

    `command` (the command line that reproduces the run) is recorded in the model card.
    """
    started = time.monotonic()
    spec = preset.spec
    work_dir.mkdir(parents=True, exist_ok=True)
    train_cache = prepare_cache(preset.train_cohort, work_dir / "train", spec, quiet)
    test_cache = prepare_cache(preset.test_cohort, work_dir / "test", spec, quiet, exact=True)
    data_seconds = time.monotonic() - started
    log.info(
        "data ready: %d train pullbacks, %d test pullbacks (%.0f s)", len(train_cache), len(test_cache), data_seconds
    )

    frames = [p.n_frames for p in train_cache.pullbacks]
    fold_of = patient_folds(train_cache.patients, preset.n_folds, preset.seed, weights=frames)
    members = []
    fold_info = []
    for fold in range(preset.n_folds):
        train_ids = [i for i, f in enumerate(fold_of) if f != fold]
        val_ids = [i for i, f in enumerate(fold_of) if f == fold]
        result = train_member(
            train_cache, train_ids, val_ids, preset.train, preset.net, preset.seed, fold,
            work_dir / f"fold{fold}", quiet
        )
        members.append(result.model)
        fold_info.append(
            {
                "fold": fold,
                "seed": preset.seed * 1000 + fold,
                "n_train_pullbacks": len(train_ids),
                "n_val_pullbacks": len(val_ids),
                "n_val_patients": len({train_cache.patients[i] for i in val_ids}),
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "train_seconds": round(result.seconds, 1),
                "stopped_by": result.stopped,
            }
        )
    train_seconds = sum(info["train_seconds"] for info in fold_info)  # across resumes

    log.info("scoring out-of-fold and on the test cohort")
    scoring_started = time.monotonic()
    oof_predictions = list(_with_fold_names(out_of_fold_predictions(members, fold_of, train_cache), fold_of))
    test_predictions = list(member_predictions(members, test_cache))  # inferred once, scored at both windows
    oof = score_predictions(oof_predictions, train_cache)
    test = score_predictions(test_predictions, test_cache)
    study_oof = score_predictions(oof_predictions, train_cache, STUDY_WINDOW)
    study_test = score_predictions(test_predictions, test_cache, STUDY_WINDOW)
    card = {
        "name": f"ivuscal-{preset.name}",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters_per_member": count_parameters(members[0]),
        "flops_per_frame_per_member": flops_per_frame(members[0], spec),
        "training": {
            "preset": preset.to_dict(),
            "augmentation": ([type(t).__name__ for t in AUGMENTATIONS[preset.train.augmentation]().transforms]
                             if preset.train.augment else []),
            "train_cohort": _cohort_summary(train_cache, preset.train_cohort.seed),
            "test_cohort": _cohort_summary(test_cache, preset.test_cohort.seed),
            "folds": fold_info,
        },
        "metrics": {
            "window": oof["window"],
            "per_fold": {k.removeprefix("fold"): v for k, v in oof["pooled"].items() if k.startswith("fold")},
            "out_of_fold": oof["pooled"]["out_of_fold"],
            "test": test["pooled"],
            "study_window": {
                "window": study_oof["window"],
                "out_of_fold": study_oof["pooled"]["out_of_fold"],
                "test": study_test["pooled"],
            },
        },
        "time_seconds": {  # data and scoring: this run; training: the members' own clocks, summed over resumes
            "data": round(data_seconds, 1),
            "training": round(train_seconds, 1),
            "scoring": round(time.monotonic() - scoring_started, 1),
            "total": round(data_seconds + train_seconds + time.monotonic() - scoring_started, 1),
        },
        "machine": machine_info(),
        "git_commit": git_commit(dirty_paths=("training", "engine/model")) or "unknown",
        "command": command,
    }
    return save_ensemble(out, members, spec, card)


def _with_fold_names(items, fold_of):
    """Also file each out-of-fold prediction under "fold<k>" so that the report scores every fold."""
    for index, probs in items:
        yield index, {**probs, f"fold{fold_of[index]}": probs["out_of_fold"]}


def _cohort_summary(cache: PolarCache, seed: int) -> dict:
    return {
        "seed": seed,
        "n_patients": len(set(cache.patients)),
        "n_pullbacks": len(cache),
        "n_frames": sum(p.n_frames for p in cache.pullbacks),
    }


def machine_info() -> dict:
    """CPU model, core count, torch version and threads: what the timings were measured on."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
