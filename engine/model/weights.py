"""Ensemble weights on disk: one safetensors file plus a JSON model card beside it.

Tensors are stored as `member{i}.{state_dict key}`; the safetensors metadata holds the network
config and input spec, so the file alone rebuilds the ensemble. The card (`<stem>.card.json`)
records provenance and metrics and the weights' SHA-256, checked on load, and may name the fused
ONNX graph shipped beside the weights (`onnx: {file, sha256, ...}`, engine/runtimes/graph.py).
Loading needs no torch; building the member networks does. Never pickle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from engine import atomic
from engine.errors import InputError
from engine.json_output import write_json
from engine.model.spec import InputSpec, NetConfig
from engine.reliability import Reliability, load_reliability

if TYPE_CHECKING:  # torch is needed only to build the members (training, export, the torch backend)
    import torch

    from engine.model.network import CalciumNet

DEFAULT_WEIGHTS = Path(__file__).parent / "default" / "ensemble.safetensors"
FORMAT = "ivuscal-ensemble/1"


@dataclass
class LoadedEnsemble:
    """An ensemble read from disk: its tensors, input spec, network config and model card.

    Reading needs no torch (the ONNX Runtime path runs the graph named in the card); `models`
    builds the member networks (eval mode, CPU) on first use and needs torch.
    """

    spec: InputSpec
    net_config: NetConfig
    n_members: int
    tensors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # "member{i}.{state_dict key}"
    card: dict = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""
    reliability: Reliability | None = None  # calibrated reliability flag (engine/reliability.py), if any
    _models: list[CalciumNet] | None = field(default=None, repr=False)

    @property
    def model_id(self) -> str:
        name = self.card.get("name", "ivuscal-ensemble")
        return f"{name}@{self.sha256[:12]}" if self.sha256 else name

    @property
    def models(self) -> list[CalciumNet]:
        """The member networks in eval mode (built from the tensors on first use; needs torch)."""
        if self._models is None:
            self._models = [self._member(i) for i in range(self.n_members)]
        return self._models

    def _member(self, i: int) -> CalciumNet:
        import torch  # see the class docstring

        from engine.model.network import CalciumNet

        prefix = f"member{i}."
        state = {
            key.removeprefix(prefix): torch.from_numpy(value.copy())
            for key, value in self.tensors.items()
            if key.startswith(prefix)
        }
        model = CalciumNet(self.net_config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise InputError(f"member {i} does not match its architecture ({error})", source=str(self.path)) from error
        return model.eval()


def card_path_for(weights_path: Path) -> Path:
    return weights_path.with_name(weights_path.name.removesuffix(".safetensors") + ".card.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_ensemble(path: Path, models: list[CalciumNet], spec: InputSpec, card: dict | None = None) -> LoadedEnsemble:
    """Write the members to `path` (safetensors) and the card beside it, each atomically; returns what was saved."""
    from safetensors.torch import save  # saving needs torch tensors

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
    atomic.write_bytes(path, _canonical_safetensors(save(tensors, metadata=metadata)))
    sha = file_sha256(path)
    full_card = dict(card or {})
    full_card.update(
        weights_file=path.name,
        weights_sha256=sha,
        n_members=len(models),
        architecture={"class": "CalciumNet", "config": config.to_dict()},
        input_spec=spec.to_dict(),
    )
    write_card(path, full_card)
    arrays = {key: value.numpy() for key, value in tensors.items()}
    return LoadedEnsemble(spec, config, len(models), arrays, full_card, path, sha, _models=list(models))


def write_card(weights_path: Path, card: dict[str, Any]) -> Path:
    """Write the model card beside `weights_path` atomically; returns the card's path."""
    card_file = card_path_for(weights_path)
    write_json(card_file, card, sort_keys=True)
    return card_file


def read_card(weights_path: Path) -> dict[str, Any]:
    """The model card beside `weights_path` ({} when there is none); InputError naming it when unreadable."""
    card_file = card_path_for(weights_path)
    if not card_file.is_file():
        return {}
    try:
        card = json.loads(card_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"model card is not readable JSON ({error})", source=str(card_file)) from error
    if not isinstance(card, dict):
        raise InputError("model card is not a JSON object", source=str(card_file))
    return card


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
    """Read an ensemble (the shipped default when `path` is None) and check its card; no torch needed.

    Raises InputError naming the file when the weights are missing, corrupt or not an ivuscal
    ensemble, or when the model card is unreadable or vouches for other weights.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise InputError("model weights not found", source=str(path))
    try:
        with open(path, "rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            metadata = json.loads(handle.read(header_len)).get("__metadata__") or {}
        tensors = load_file(str(path))
    except (SafetensorError, ValueError, OSError, AttributeError) as error:
        raise InputError(f"not a readable safetensors file ({error})", source=str(path)) from error
    if metadata.get("format") != FORMAT:
        raise InputError(f"not an ivuscal ensemble (format {metadata.get('format')!r})", source=str(path))
    try:
        config = NetConfig.from_dict(json.loads(metadata["net_config"]))
        spec = InputSpec.from_dict(json.loads(metadata["input_spec"]))
        n_members = int(metadata["n_members"])
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"ensemble metadata incomplete or malformed ({error!r})", source=str(path)) from error
    sha = file_sha256(path)
    card = read_card(path)
    if card and card.get("weights_sha256") != sha:
        raise InputError(
            "model card does not match the weights (weights_sha256 differs)", source=str(card_path_for(path))
        )
    return LoadedEnsemble(spec, config, n_members, tensors, card, path, sha, reliability=load_reliability(path, sha))


def ensemble_probabilities(models: list[CalciumNet], polar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ensemble: mean and standard deviation of the members' sigmoid probabilities.

    `polar` is (B, D, A) in [0, 1]; returns two (B, A) tensors. Every runtime must match this.
    """
    import torch  # the reference is a torch computation

    with torch.no_grad():
        x = polar.unsqueeze(1)
        probs = torch.stack([torch.sigmoid(model(x)) for model in models], dim=0)
        return probs.mean(dim=0), probs.std(dim=0, unbiased=False)
