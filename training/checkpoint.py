"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

`last.safetensors` holds `model.*` (the state dict) and `opt.<param>.<name>` (AdamW moments
and step counts); `state.json` beside it holds the epoch, history and optimizer hyperparameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.atomic import atomic_path
from engine.json_output import write_json


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, state: dict) -> None:
    """Write model (+ optimizer) tensors to `path` and `state` to `<path>.json`, each atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    groups = None
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        for index, values in opt_state["state"].items():
            for name, value in values.items():
                tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        groups = opt_state["param_groups"]
    with atomic_path(path) as partial:
        save_file(tensors, str(partial))
    _write_json(_state_path(path), {**state, "optimizer_param_groups": groups})


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (+ optimizer) from `path`; returns the JSON state."""
    tensors = load_file(str(path))
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    state = json.loads(_state_path(path).read_text())
    if optimizer is not None and state.get("optimizer_param_groups") is not None:
        per_param: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer_param_groups"]})
    return state


def _state_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".safetensors") + ".json")


def _write_json(path: Path, data: dict) -> None:
    write_json(path, data, indent=1, sort_keys=True, digits=None)  # state: must round-trip exactly
