"""What the network expects as input (the polar grid, the intensity scaling) and its shape.

Both travel with the weights (safetensors metadata and model card) so that the runtime samples
frames the way the model was trained. Plain data, no torch: the ONNX Runtime path reads them too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InputSpec:
    """Polar input of the network: `n_depth` samples x `n_alines` A-lines, float32 in [0, 1].

    Depth sample `j` lies at radius `(j + 0.5) * depth_spacing_mm` from the catheter centre;
    A-line `k` is centred on angle `(k + 0.5) * 360 / n_alines` degrees (docs/conventions.md).
    Pixel values are divided by 255.
    """

    n_alines: int = 360
    n_depth: int = 128
    depth_spacing_mm: float = 0.04

    @property
    def max_radius_mm(self) -> float:
        return self.n_depth * self.depth_spacing_mm

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        return cls(**{k: data[k] for k in ("n_alines", "n_depth", "depth_spacing_mm")})


@dataclass(frozen=True)
class NetConfig:
    """Constructor arguments of `engine.model.network.CalciumNet`; stored with the weights."""

    channels: tuple[int, ...] = (8, 16, 24, 32)
    decoder_channels: int = 24

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> NetConfig:
        return cls(channels=tuple(data["channels"]), decoder_channels=int(data["decoder_channels"]))
