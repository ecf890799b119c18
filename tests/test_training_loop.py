"""Training a member on the easy synthetic task: it learns, it resumes exactly, checkpoints are safetensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.model.network import NetConfig
from engine.model.spec import InputSpec
from training import trainer
from training.cache import CacheWriter, PolarCache
from training.data import frame_indices
from training.synthetic import synthetic_pullback
from training.trainer import TrainConfig, train_member, validate

SPEC = InputSpec(n_alines=120, n_depth=64, depth_spacing_mm=0.08)  # small frames keep the test fast
SMALL = NetConfig(channels=(4, 8, 12, 16), decoder_channels=12)
CONFIG = TrainConfig(batch_size=16, lr=5e-3, max_epochs=3, patience=5, frame_stride=2, val_frame_stride=2,
                     warmup_steps=3)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> PolarCache:
    writer = CacheWriter(tmp_path_factory.mktemp("cache"), SPEC)
    rng = np.random.default_rng(3)
    for i in range(6):
        polar, labels = synthetic_pullback(rng, 36, SPEC)
        writer.add(f"pb{i}", f"patient{i}", polar, labels)
    return writer.close()


def test_cache_round_trips_frames_as_uint8_memmaps(cache: PolarCache) -> None:
    polar = cache.polar(0)
    assert isinstance(polar, np.memmap) and polar.dtype == np.uint8 and polar.shape == (36, 64, 120)
    assert cache.labels(0).dtype == bool and cache.labels(0).shape == (36, 120)
    rows = frame_indices(cache, [0, 1], stride=3, offset=1)
    assert rows[:3].tolist() == [[0, 1], [0, 4], [0, 7]] and len(rows) == 24


def test_loss_falls_and_accuracy_rises(cache: PolarCache) -> None:
    torch.manual_seed(0)
    before = validate(trainer.CalciumNet(SMALL), cache, frame_indices(cache, [4, 5], 2))
    result = train_member(cache, [0, 1, 2, 3], [4, 5], CONFIG, SMALL, seed=1, fold=0)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best_val["accuracy"] > max(before["accuracy"], 0.85)
    assert result.best_val["dice"] > 0.5


def test_interrupted_training_resumes_to_the_same_model_and_finished_reloads(cache: PolarCache, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    straight = train_member(cache, [0, 1, 2, 3], [4, 5], CONFIG, SMALL, seed=2, fold=1, run_dir=tmp_path / "a")

    real_validate = trainer.validate
    calls = {"n": 0}

    def interrupting_validate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(trainer, "validate", interrupting_validate)
    with pytest.raises(KeyboardInterrupt):
        train_member(cache, [0, 1, 2, 3], [4, 5], CONFIG, SMALL, seed=2, fold=1, run_dir=tmp_path / "b")
    monkeypatch.setattr(trainer, "validate", real_validate)
    resumed = train_member(cache, [0, 1, 2, 3], [4, 5], CONFIG, SMALL, seed=2, fold=1, run_dir=tmp_path / "b")

    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert not any(p.suffix in {".pt", ".pth", ".pkl"} for p in (tmp_path / "b").iterdir())
    assert {p.name for p in (tmp_path / "b").iterdir()} >= {"last.safetensors", "last.json", "best.safetensors",
                                                            "best.json"}

    # a finished member reloads its best epoch without training again
    monkeypatch.setattr(trainer, "batches", lambda *a, **k: pytest.fail("a finished member must not train again"))
    again = train_member(cache, [0, 1, 2, 3], [4, 5], CONFIG, SMALL, seed=2, fold=1, run_dir=tmp_path / "a")
    assert again.best_epoch == straight.best_epoch
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
