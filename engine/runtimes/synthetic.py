"""An untrained ensemble with spread-out outputs, for parity checks and benchmarks without a trained model.

Fresh `CalciumNet`s have unit batch-norm statistics and give probabilities bunched near 0.5;
randomising the statistics and affine terms spreads them over (0, 1), so that parity checks see
both sides of the 0.5 vote. Timing does not depend on the weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import LoadedEnsemble, save_ensemble


def random_ensemble(path: Path | str, n_members: int = 5, seed: int = 0, spec: InputSpec | None = None,
                    config: NetConfig | None = None, logit_std: float = 2.0) -> LoadedEnsemble:
    """Save `n_members` randomly initialised networks to `path` (safetensors + card) and return them."""
    generator = torch.Generator().manual_seed(seed)
    spec = spec or InputSpec()
    with torch.random.fork_rng(), torch.no_grad():  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        models = [CalciumNet(config) for _ in range(n_members)]
        probe = torch.rand(4, spec.n_depth, spec.n_alines, generator=generator).unsqueeze(1)
        for model in models:
            for module in model.modules():
                if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                    n = module.num_features
                    assert module.running_mean is not None and module.running_var is not None  # track_running_stats
                    module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                    module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                    module.weight.copy_(0.8 + 0.6 * torch.rand(n, generator=generator))
                    module.bias.copy_(0.1 * torch.randn(n, generator=generator))
            _calibrate_head(model.eval(), probe, logit_std)
    card = {"name": "ivuscal-random", "note": "untrained: for parity checks and benchmarks only"}
    return save_ensemble(Path(path), models, spec, card=card)


def _calibrate_head(model: CalciumNet, probe: torch.Tensor, logit_std: float) -> None:
    """Rescale the head so that logits on `probe` are centred on 0 with standard deviation `logit_std`."""
    logits = model(probe)
    scale = logit_std / logits.std().clamp_min(1e-6)
    assert model.head.bias is not None
    model.head.weight.mul_(scale)
    model.head.bias.copy_((model.head.bias - logits.median()) * scale)
