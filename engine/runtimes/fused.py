"""The members and their average as one module, the graph every backend runs.

`FusedEnsemble(models)(polar)` equals `ensemble_probabilities(models, polar)`: the members see
the same (B, 1, D, A) input (their normalisation lives inside `CalciumNet`), each logit row goes
through a sigmoid in float32, and the rows are reduced to their mean and population standard
deviation. With `compute_dtype=torch.float16` the members run in half precision while the input,
the sigmoid and the reduction stay float32 (the graph the fp16 TensorRT engine is built from).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from engine.model.network import CalciumNet


class FusedEnsemble(nn.Module):
    """polar (B, D, A) float32 in [0, 1] -> (probability (B, A), spread (B, A)) float32."""

    def __init__(self, models: list[CalciumNet], compute_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        members = [copy.deepcopy(model).eval() for model in models]
        self.members = nn.ModuleList(member.to(compute_dtype) for member in members)
        self.compute_dtype = compute_dtype

    def forward(self, polar: Tensor) -> tuple[Tensor, Tensor]:
        x = polar.unsqueeze(1).to(self.compute_dtype)
        probs = torch.stack([torch.sigmoid(member(x).float()) for member in self.members], dim=0)
        return probs.mean(dim=0), probs.std(dim=0, correction=0)
