"""CalciumNet: an encoder-decoder that maps one polar IVUS frame to one calcium logit per A-line.

Encoder: 2-D convolutions over depth x angle; the angle axis is circular (no seam at 0/360 deg),
the depth axis is zero-padded. Each encoder level is pooled over depth by a learned softmax
attention, giving 1-D angular features. Decoder: 1-D circular convolutions along the angle that
upsample the bottleneck back to every A-line, with the pooled skips of each level (a U-Net whose
decoder lives on the circle). The attention map at the penultimate 2-D layer (Grad-CAM over the
last encoder level) shows where in depth x angle the decision came from.

The module knows nothing of DICOM, sockets or files (see engine/model/weights.py for I/O).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.model.spec import NetConfig

# The network the project shipped before issue 15 (channels 8/16/24/32, decoder 24, stem stride 2
# and kernel 5 along depth): `ivuscal bench runtimes --levers` times it beside the shipped one.
PREVIOUS_CONFIG = NetConfig(channels=(8, 16, 24, 32), decoder_channels=24, stem_depth_stride=2, stem_depth_kernel=5)


def circular_pad_angle(x: Tensor, pad: int) -> Tensor:
    """Wrap the last (angle) axis by `pad` on each side; concatenation exports cleanly to ONNX."""
    if pad == 0:
        return x
    return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)


class PolarConv2d(nn.Module):
    """Conv2d over (depth, angle): circular padding along angle, zero padding along depth."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.pad_depth = kernel[0] // 2
        self.pad_angle = kernel[1] // 2
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(self.pad_depth, 0), bias=False)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(circular_pad_angle(x, self.pad_angle))))


class CircularConv1d(nn.Module):
    """Conv1d along the angle with circular padding, then BatchNorm and ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv1d(c_in, c_out, kernel, bias=False)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(circular_pad_angle(x, self.pad))))


class DepthAttentionPool(nn.Module):
    """Pool (C, depth, angle) features over depth with a learned softmax attention per angle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, features: Tensor) -> Tensor:
        weights = torch.softmax(self.score(features), dim=2)
        return (features * weights).sum(dim=2)


class CalciumNet(nn.Module):
    """One polar frame (B, 1, depth, A) in [0, 1] -> calcium logits (B, A).

    A must be divisible by 8 (three angular downsamplings); depth by 8 x the stem's depth stride.
    """

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetConfig()
        c0, c1, c2, c3 = self.config.channels
        cd = self.config.decoder_channels
        stem_stride, stem_kernel = self.config.stem_depth_stride, self.config.stem_depth_kernel
        self.stem = PolarConv2d(1, c0, (stem_kernel, 3), stride=(stem_stride, 1))
        self.enc1 = PolarConv2d(c0, c1, (3, 3), stride=(2, 2))
        self.enc2 = nn.Sequential(PolarConv2d(c1, c2, (3, 3), stride=(2, 2)), PolarConv2d(c2, c2, (3, 3), (1, 1)))
        self.enc3 = nn.Sequential(PolarConv2d(c2, c3, (3, 3), stride=(2, 2)), PolarConv2d(c3, c3, (3, 3), (1, 1)))
        self.pools = nn.ModuleList([DepthAttentionPool(c) for c in (c0, c1, c2, c3)])
        self.dec3 = CircularConv1d(c3, cd, kernel=5)
        self.dec2 = CircularConv1d(cd + c2, cd, kernel=5)
        self.dec1 = CircularConv1d(cd + c1, cd, kernel=5)
        self.dec0 = CircularConv1d(cd + c0, cd, kernel=5)
        self.head = nn.Conv1d(cd, 1, kernel_size=1)
        self.input_mean: Tensor
        self.input_std: Tensor
        self.register_buffer("input_mean", torch.tensor(0.25))
        self.register_buffer("input_std", torch.tensor(0.25))

    def encode(self, x: Tensor) -> list[Tensor]:
        """The 2-D feature maps of the four encoder levels (the last is the penultimate 2-D layer)."""
        x = (x - self.input_mean) / self.input_std
        f0 = self.stem(x)
        f1 = self.enc1(f0)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        return [f0, f1, f2, f3]

    def decode(self, levels: list[Tensor]) -> Tensor:
        """Pooled encoder levels -> logits per A-line."""
        p0, p1, p2, p3 = (pool(f) for pool, f in zip(self.pools, levels, strict=True))
        y = self.dec3(p3)
        y = self.dec2(torch.cat([_upsample2(y), p2], dim=1))
        y = self.dec1(torch.cat([_upsample2(y), p1], dim=1))
        y = self.dec0(torch.cat([_upsample2(y), p0], dim=1))
        return self.head(y)[:, 0, :]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def attention_map(self, x: Tensor, target: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Grad-CAM at the penultimate 2-D layer: (logits (B, A), attention (B, d, a) in [0, 1]).

        The attention explains the sum of logits over `target` A-lines (bool (B, A)); by default
        the A-lines the network calls calcified, or all A-lines when it calls none.
        """
        levels = self.encode(x)
        last = levels[-1]
        last.retain_grad()
        logits = self.decode(levels)
        if target is None:
            target = logits > 0
            target = torch.where(target.any(dim=1, keepdim=True), target, torch.ones_like(target))
        (logits * target).sum().backward()
        if last.grad is None:
            raise RuntimeError("no gradient reached the last encoder level")
        weights = last.grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * last).sum(dim=1))
        cam = cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        return logits.detach(), cam.detach()


def _upsample2(x: Tensor) -> Tensor:
    """Double the angular resolution (nearest neighbour keeps A-line alignment exact)."""
    return torch.repeat_interleave(x, 2, dim=-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_frame(model: nn.Module, spec_or_shape) -> int:
    """Floating-point operations (2 x multiply-adds of the convolutions) for one frame.

    `spec_or_shape` is an `InputSpec` or a (depth, A) pair. Normalisation, activations and the
    attention softmax are a few percent more and are not counted.
    """
    depth, n_alines = (
        (spec_or_shape.n_depth, spec_or_shape.n_alines) if hasattr(spec_or_shape, "n_depth") else spec_or_shape
    )
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: Tensor) -> None:
        nonlocal total
        weight = module.weight
        assert isinstance(weight, Tensor)
        per_output = weight[0].numel()  # (c_in / groups) x kernel
        total += 2 * per_output * output[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, depth, n_alines))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
