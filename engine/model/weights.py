"""Ensemble weights on disk: one safetensors file plus a JSON model card beside it.

Tensors are stored as `member{i}.{state_dict key}`; the safetensors metadata holds the network
config and input spec, so the file alone rebuilds the ensemble. The card (`<stem>.card.json`)
records provenance and metrics and the weights' SHA-256, checked on load. Never pickle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from engine.errors import InputError
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.reliability import Reliability, load_reliability

DEFAULT_WEIGHTS = Path(__file__).parent / "default" / "ensemble.safetensors"
FORMAT = "ivuscal-ensemble/1"


@dataclass
class LoadedEnsemble:
    """The member networks (eval mode), their input spec, and the model card."""

    models: list[CalciumNet]
    spec: InputSpec
    net_config: NetConfig
    card: dict = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""
    reliability: Reliability | None = None  # calibrated reliability flag (engine/reliability.py), if any

    @property
    def model_id(self) -> str:
        name = self.card.get("name", "ivuscal-ensemble")
        return f"{name}@{self.sha256[:12]}" if self.sha256 else name


def card_path_for(weights_path: Path) -> Path:
    return weights_path.with_name(weights_path.name.removesuffix(".safetensors") + ".card.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_ensemble(path: Path, models: list[CalciumNet], spec: InputSpec, card: dict | None = None) -> LoadedEnsemble:
    """Write the members to `path` (safetensors) and the card beside it; returns what was saved."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    config = models[0].config
    tensors = {
        f"member{i}.{key}": value.detach().cpu().contiguous()
        for i, model in enumerate(models)
        for key, value in model.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "n_members": str(len(models)),
        "net_config": json.dumps(config.to_dict()),
        "input_spec": json.dumps(spec.to_dict()),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_canonical_safetensors(save(tensors, metadata=metadata)))
    sha = file_sha256(path)
    full_card = dict(card or {})
    full_card.update(
        weights_file=path.name,
        weights_sha256=sha,
        n_members=len(models),
        architecture={"class": "CalciumNet", "config": config.to_dict()},
        input_spec=spec.to_dict(),
    )
    card_path_for(path).write_text(json.dumps(full_card, indent=2, sort_keys=True) + "\n")
    return LoadedEnsemble(models, spec, config, full_card, path, sha)


def _canonical_safetensors(data: bytes) -> bytes:
    """The same file with its JSON header keys sorted, so equal weights give equal bytes (and hash).

    safetensors writes the metadata map in arbitrary order; the tensor data and offsets are
    untouched, and the header keeps its padded length.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    canonical = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    if len(canonical) > length:
        raise ValueError("canonical safetensors header is longer than the original")
    return data[:8] + canonical.ljust(length, b" ") + data[8 + length :]


def load_ensemble(path: Path | str | None = None) -> LoadedEnsemble:
    """Load an ensemble (the shipped default when `path` is None) in eval mode on the CPU."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise InputError("model weights not found", source=str(path))
    try:
        with open(path, "rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            metadata = json.loads(handle.read(header_len)).get("__metadata__", {})
        tensors = load_file(str(path))
    except (SafetensorError, ValueError, OSError) as error:
        raise InputError(f"not a readable safetensors file ({error})", source=str(path)) from error
    if metadata.get("format") != FORMAT:
        raise InputError(f"not an ivuscal ensemble (format {metadata.get('format')!r})", source=str(path))
    config = NetConfig.from_dict(json.loads(metadata["net_config"]))
    spec = InputSpec.from_dict(json.loads(metadata["input_spec"]))
    models = []
    for i in range(int(metadata["n_members"])):
        prefix = f"member{i}."
        state = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        model = CalciumNet(config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise InputError(f"member {i} does not match its architecture ({error})", source=str(path)) from error
        models.append(model.eval())
    sha = file_sha256(path)
    card_file = card_path_for(path)
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    if card and card.get("weights_sha256") != sha:
        raise InputError(f"model card {card_file.name} does not match the weights (hash differs)", source=str(path))
    return LoadedEnsemble(models, spec, config, card, path, sha, load_reliability(path, sha))


@torch.no_grad()
def ensemble_probabilities(models: list[CalciumNet], polar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ensemble: mean and standard deviation of the members' sigmoid probabilities.

    `polar` is (B, D, A) in [0, 1]; returns two (B, A) tensors. Every runtime must match this.
    """
    x = polar.unsqueeze(1)
    probs = torch.stack([torch.sigmoid(model(x)) for model in models], dim=0)
    return probs.mean(dim=0), probs.std(dim=0, unbiased=False)
