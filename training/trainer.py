"""Train one ensemble member: AdamW, BCE + soft Dice, early stopping on its validation fold.

Every random draw derives from `(seed, fold, epoch)`, so a run resumed from an epoch checkpoint
continues exactly as it would have without the interruption.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from engine.metrics import Confusion
from engine.model.network import CalciumNet, NetConfig
from engine.progress import progress
from training.cache import PolarCache
from training.checkpoint import load_checkpoint, save_checkpoint
from training.data import batches, frame_indices, with_hard_negatives
from training.losses import BceDiceLoss
from training.transforms import AUGMENTATIONS, Compose

log = logging.getLogger("training")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one member's training."""

    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 12
    patience: int = 3
    frame_stride: int = 3
    val_frame_stride: int = 4
    max_steps_per_epoch: int = 0  # 0: a full pass over the strided frames
    max_member_seconds: float = 0.0  # 0: no limit; else stop after the epoch that crosses it
    warmup_steps: int = 30
    dice_weight: float = 1.0
    augment: bool = True
    augmentation: str = "default"  # transforms.AUGMENTATIONS: "default", or "basic" (the pre-issue-12 set)
    hard_negative_share: float = 0.0  # extra draws of frames with calcium-like confounders (data.with_hard_negatives)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MemberResult:
    """A trained member (best validation epoch) and how it got there."""

    model: CalciumNet
    best_epoch: int
    best_val: dict
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str | None = None


@dataclass
class TrainState:
    """Where a member's training stands after an epoch; `last.json` holds it (with the optimizer groups)."""

    epoch: int = -1  # last finished epoch
    step: int = 0  # optimizer steps taken
    best_epoch: int = -1
    best_val: dict | None = None  # validation metrics of `best_epoch`
    history: list[dict] = field(default_factory=list)  # one record per epoch
    done: bool = False
    seconds: float = 0.0  # training time so far, across resumes
    stopped: str | None = None  # why training stopped (`_stop_reason`), None while it goes on

    @classmethod
    def from_dict(cls, data: dict) -> TrainState:
        """The state in a checkpoint's JSON (other keys, such as the optimizer groups, are left out)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def seeded_rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def predict_rows(model: CalciumNet, cache: PolarCache, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities (M, A) float32 of the model on (pullback, frame) rows, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for x, _ in batches(cache, rows, batch_size):
            out.append(torch.sigmoid(model(x)).numpy())
    return np.concatenate(out) if out else np.zeros((0, cache.spec.n_alines), np.float32)


def validate(model: CalciumNet, cache: PolarCache, rows: np.ndarray) -> dict:
    """Pooled A-line metrics at threshold 0.5 (before any filter) on validation rows."""
    prob = predict_rows(model, cache, rows)
    truth = np.stack([cache.labels(int(p))[int(f)] for p, f in rows])
    return Confusion.of(prob > 0.5, truth).metrics()


def _lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress_frac = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    return config.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress_frac)))


def train_member(
    cache: PolarCache,
    train_pullbacks: Sequence[int],
    val_pullbacks: Sequence[int],
    config: TrainConfig,
    net_config: NetConfig,
    seed: int,
    fold: int,
    run_dir: Path | None = None,
    quiet: bool = True,
) -> MemberResult:
    """Train (or resume, or reload a finished) member on `train_pullbacks`, stopping on `val_pullbacks`."""
    torch.manual_seed(seed * 1000 + fold)
    model = CalciumNet(net_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = BceDiceLoss(dice_weight=config.dice_weight)
    augment: Compose | None = AUGMENTATIONS[config.augmentation]() if config.augment else None
    val_rows = frame_indices(cache, val_pullbacks, config.val_frame_stride)
    steps_per_epoch = math.ceil(len(frame_indices(cache, train_pullbacks, config.frame_stride)) / config.batch_size)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    total_steps = steps_per_epoch * config.max_epochs

    state = TrainState()
    last_path = run_dir / "last.safetensors" if run_dir else None
    best_path = run_dir / "best.safetensors" if run_dir else None
    if run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
    if last_path and last_path.is_file():
        state = TrainState.from_dict(load_checkpoint(last_path, model, optimizer))
        log.info("fold %d: resuming after epoch %d", fold, state.epoch)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    if best_path and best_path.is_file():
        best_model = CalciumNet(net_config)
        load_checkpoint(best_path, best_model)
        best_state = best_model.state_dict()

    started = time.monotonic() - state.seconds
    epoch = state.epoch + 1
    while not state.done and epoch < config.max_epochs:
        rng = seeded_rng(seed, fold, epoch)
        torch.manual_seed(int(rng.integers(2**31)))
        rows = with_hard_negatives(cache, frame_indices(cache, train_pullbacks, config.frame_stride, offset=epoch),
                                   config.hard_negative_share, rng)
        model.train()
        losses = []
        with progress(f"fold {fold} epoch {epoch}", steps_per_epoch, quiet) as bar:
            for i, (x, y) in enumerate(batches(cache, rows, config.batch_size, rng, augment)):
                if i >= steps_per_epoch:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = _lr_at(state.step, total_steps, config)
                loss = loss_fn(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                state.step += 1
                losses.append(float(loss.detach()))
                bar.advance()
        val = validate(model, cache, val_rows)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), **{f"val_{k}": v for k, v in val.items()}}
        state.history.append(record)
        log.info(
            "fold %d epoch %d: loss %.4f val dice %.4f acc %.4f (%.0f s)",
            fold, epoch, record["train_loss"], val["dice"], val["accuracy"], time.monotonic() - started,
        )
        if state.best_val is None or _score(val) > _score(state.best_val):
            state.best_val, state.best_epoch = val, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if best_path:
                save_checkpoint(best_path, model, None, {"epoch": epoch, "val": val})
        state.epoch = epoch
        state.seconds = time.monotonic() - started
        state.stopped = _stop_reason(state, epoch, config)
        state.done = state.stopped is not None
        if last_path:
            save_checkpoint(last_path, model, optimizer, asdict(state))
        epoch += 1

    model.load_state_dict(best_state)
    model.eval()
    return MemberResult(model, state.best_epoch, state.best_val or {}, state.history, state.seconds, state.stopped)


def _stop_reason(state: TrainState, epoch: int, config: TrainConfig) -> str | None:
    """Why training stops after `epoch` ("patience", "max_epochs", "time"), or None to go on."""
    if epoch - state.best_epoch >= config.patience:
        return "patience"
    if epoch + 1 >= config.max_epochs:
        return "max_epochs"
    if config.max_member_seconds and state.seconds >= config.max_member_seconds:
        return "time"
    return None


def _score(metrics: dict) -> float:
    """Early-stopping score: Dice, with accuracy to break ties; NaN (no calcium anywhere) counts as 0."""
    dice = metrics["dice"] if metrics["dice"] == metrics["dice"] else 0.0
    return dice + 1e-3 * metrics["accuracy"]
