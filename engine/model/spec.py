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
    """Constructor arguments of `engine.model.network.CalciumNet`; stored with the weights.

    The defaults are the network shaped for CPU speed (issue 15): the stem strides 4 depth
    samples (kernel 7 deep), which halves the largest feature map (64 -> 32 x 360), and the
    24-channel level became 32 wide with a 16-channel decoder. Weights saved before the stem
    was configurable carry no stem fields and are read as the original stem (stride 2, kernel 5).
    """

    channels: tuple[int, ...] = (8, 16, 32, 32)
    decoder_channels: int = 16
    stem_depth_stride: int = 4
    stem_depth_kernel: int = 7

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> NetConfig:
        return cls(
            channels=tuple(data["channels"]),
            decoder_channels=int(data["decoder_channels"]),
            stem_depth_stride=int(data.get("stem_depth_stride", LEGACY_STEM[0])),
            stem_depth_kernel=int(data.get("stem_depth_kernel", LEGACY_STEM[1])),
        )


# The stem (depth stride, depth kernel) of weights saved before NetConfig had stem fields.
LEGACY_STEM = (2, 5)
