"""The members and their average as one module, the graph every backend runs.

`FusedEnsemble(models)(polar)` equals `ensemble_probabilities(models, polar)`: mean and population
standard deviation over the members of their sigmoid probabilities, (B, A) float32 each.

Two layouts of the same arithmetic:

- `"wide"` (the default): the M members become ONE network whose every layer is M members wide.
  Each convolution is a single grouped convolution (`groups=M`, the members' kernels stacked
  along the output channels) with BatchNorm folded into its weights and bias; the stem, whose
  input all members share, is one dense convolution with M x c0 outputs. A runtime thus
  executes ~20 wide operations instead of ~100 narrow ones (5x fewer kernel launches, padding
  and concatenations done once for all members). Works with any trained `CalciumNet` weights.
  Members' channels are not padded to ONNX Runtime's NCHWc block (16 on AVX-512): measured,
  zero-padding 8 -> 16 and 24 -> 32 made the grouped convolutions blocked but cost more than it
  saved (12.0 vs 10.3 kernel-ms per frame; docs/runtimes.md).
- `"members"`: the members one after another, as trained (the reference layout; kept for the
  parity checks and for `bench.runtime_speed`'s side-by-side figure).

With `compute_dtype=torch.float16` the members run in half precision while the input, the
sigmoid and the reduction stay float32 (the graph the fp16 TensorRT engine is built from).
"""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.model.network import CalciumNet, CircularConv1d, DepthAttentionPool, PolarConv2d, circular_pad_angle

LAYOUTS = ("wide", "members")


class FusedEnsemble(nn.Module):
    """polar (B, D, A) float32 in [0, 1] -> (probability (B, A), spread (B, A)) float32."""

    def __init__(
        self, models: list[CalciumNet], compute_dtype: torch.dtype = torch.float32, layout: str = "wide"
    ) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown ensemble layout {layout!r} (expected one of {LAYOUTS})")
        self.layout = layout
        self.compute_dtype = compute_dtype
        members = [copy.deepcopy(model).eval() for model in models]
        if layout == "wide":
            self.wide = WideCalciumNet(members).to(compute_dtype)
        else:
            self.members = nn.ModuleList(member.to(compute_dtype) for member in members)

    def forward(self, polar: Tensor) -> tuple[Tensor, Tensor]:
        x = polar.unsqueeze(1).to(self.compute_dtype)
        if self.layout == "wide":
            probs = torch.sigmoid(self.wide(x).float())  # (B, M, A)
            return probs.mean(dim=1), probs.std(dim=1, correction=0)
        probs = torch.stack([torch.sigmoid(member(x).float()) for member in self.members], dim=0)
        return probs.mean(dim=0), probs.std(dim=0, correction=0)


def _bias(conv: nn.Conv1d | nn.Conv2d) -> Tensor:
    """The bias of a convolution built with one (every wide layer is)."""
    if conv.bias is None:
        raise RuntimeError("wide convolution was built without a bias")
    return conv.bias


def _folded(conv: nn.Conv1d | nn.Conv2d, norm: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Weight and bias of `norm(conv(x))` as one convolution (eval-mode BatchNorm)."""
    if norm.running_mean is None or norm.running_var is None:
        raise RuntimeError("cannot fold a BatchNorm that tracks no running statistics")
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return weight.detach(), bias.detach()


class WideConv(nn.Module):
    """The same conv+BN+ReLU layer of M members as one grouped convolution with circular angle padding.

    Input (B, M x c_in, [depth,] angle), member-major channels; output (B, M x c_out, ...).
    `shared_input=True`: every member reads the same c_in channels (dense conv, M x c_out outputs).
    """

    def __init__(self, layers: list[PolarConv2d | CircularConv1d], shared_input: bool = False) -> None:
        super().__init__()
        first = layers[0]
        folded = [_folded(layer.conv, layer.norm) for layer in layers]
        weight = torch.cat([w for w, _ in folded])
        groups = 1 if shared_input else len(layers)
        conv_type = nn.Conv2d if isinstance(first.conv, nn.Conv2d) else nn.Conv1d
        self.pad_angle = first.pad_angle if isinstance(first, PolarConv2d) else first.pad
        # torch types kernel_size/stride/padding as tuple[int, ...]; they come from a layer of the same type.
        self.conv = conv_type(
            weight.shape[1] * groups, weight.shape[0], first.conv.kernel_size,  # type: ignore[arg-type]
            stride=first.conv.stride, padding=first.conv.padding, groups=groups,  # type: ignore[arg-type]
        )
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            _bias(self.conv).copy_(torch.cat([b for _, b in folded]))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(circular_pad_angle(x, self.pad_angle)))


class WideAttentionPool(nn.Module):
    """M members' depth-attention pools at once: (B, M x C, d, a) -> (B, M x C, a)."""

    def __init__(self, pools: list[DepthAttentionPool]) -> None:
        super().__init__()
        self.n_members = len(pools)
        weight = torch.cat([pool.score.weight.detach() for pool in pools])  # (M, C, 1, 1)
        self.score = nn.Conv2d(weight.shape[1] * self.n_members, self.n_members, 1, groups=self.n_members)
        with torch.no_grad():
            self.score.weight.copy_(weight)
            _bias(self.score).copy_(torch.cat([_bias(pool.score).detach() for pool in pools]))

    def forward(self, features: Tensor) -> Tensor:
        b, mc, d, a = features.shape
        m = self.n_members
        weights = torch.softmax(self.score(features), dim=2)  # (B, M, d, a)
        pooled = (features.reshape(b, m, mc // m, d, a) * weights.unsqueeze(2)).sum(dim=3)
        return pooled.reshape(b, mc, a)


class WideCalciumNet(nn.Module):
    """M `CalciumNet`s as one network: (B, 1, D, A) -> logits (B, M, A), member m in row m."""

    def __init__(self, members: list[CalciumNet]) -> None:
        super().__init__()
        m = self.n_members = len(members)
        means = torch.stack([member.input_mean.detach().float() for member in members])
        stds = torch.stack([member.input_std.detach().float() for member in members])
        # Members that normalise alike read one shared input: the stem is then one dense convolution.
        self.shared_input = bool((means == means[0]).all() and (stds == stds[0]).all())
        shape = (1, 1, 1, 1) if self.shared_input else (1, m, 1, 1)
        self.input_mean: Tensor
        self.input_std: Tensor
        self.register_buffer("input_mean", (means[:1] if self.shared_input else means).reshape(shape))
        self.register_buffer("input_std", (stds[:1] if self.shared_input else stds).reshape(shape))
        self.stem = WideConv([n.stem for n in members], shared_input=self.shared_input)
        self.enc1 = WideConv([n.enc1 for n in members])
        # nn.Sequential / nn.ModuleList index to nn.Module; CalciumNet fills them with these layer types.
        self.enc2 = nn.Sequential(*(WideConv([cast(PolarConv2d, n.enc2[i]) for n in members]) for i in range(2)))
        self.enc3 = nn.Sequential(*(WideConv([cast(PolarConv2d, n.enc3[i]) for n in members]) for i in range(2)))
        self.pools = nn.ModuleList(
            WideAttentionPool([cast(DepthAttentionPool, n.pools[i]) for n in members]) for i in range(4)
        )
        self.dec3 = WideConv([n.dec3 for n in members])
        self.dec2 = WideConv([n.dec2 for n in members])
        self.dec1 = WideConv([n.dec1 for n in members])
        self.dec0 = WideConv([n.dec0 for n in members])
        head_weight = torch.cat([n.head.weight.detach() for n in members])  # (M, cd, 1)
        self.head = nn.Conv1d(head_weight.shape[1] * m, m, 1, groups=m)
        with torch.no_grad():
            self.head.weight.copy_(head_weight)
            _bias(self.head).copy_(torch.cat([_bias(n.head).detach() for n in members]))

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.input_mean) / self.input_std
        f0 = self.stem(x)
        f1 = self.enc1(f0)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        p0, p1, p2, p3 = (pool(f) for pool, f in zip(self.pools, (f0, f1, f2, f3), strict=True))
        y = self.dec3(p3)
        y = self.dec2(self._join(y, p2))
        y = self.dec1(self._join(y, p1))
        y = self.dec0(self._join(y, p0))
        return self.head(y)

    def _join(self, y: Tensor, skip: Tensor) -> Tensor:
        """Upsample y x2 along the angle and put each member's skip channels after its own y channels."""
        b, _, a = skip.shape
        m = self.n_members
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        return torch.cat([y.reshape(b, m, -1, a), skip.reshape(b, m, -1, a)], dim=2).reshape(b, -1, a)
