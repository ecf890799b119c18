"""Shared material of the streaming tests: a small random ensemble, small frames, a loopback engine.

The ensemble is a real one (CalciumNet members saved with save_ensemble and loaded through
create_runtime); its head is rescaled on the test frames so that its votes fall on both sides of 0.5
and the filter has something to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.geometry import PolarSampler
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import save_ensemble
from engine.pipeline import PipelineSettings
from engine.streaming import protocol as p
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.server import ServerConfig, create_server

SPEC = InputSpec(n_alines=64, n_depth=32, depth_spacing_mm=0.05)
SHAPE = (48, 48)
CALIB = p.Calibration((0.05, 0.05), (23.5, 24.0), 1 / 30, 6.0)
SETTINGS = PipelineSettings(window_frames=5, window_alines=11)


def make_frames(n: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 48, 48): speckle plus a bright arc whose angle and extent drift along the pullback."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    dy, dx = rows - CALIB.center_rc[0], cols - CALIB.center_rc[1]
    radius = np.hypot(dy, dx) * CALIB.pixel_spacing_mm[0]
    angle = np.degrees(np.arctan2(dy, dx)) % 360
    frames = rng.integers(0, 60, size=(n, *SHAPE)).astype(np.float32)
    for i in range(n):
        centre, extent = (40 * np.sin(i / 9) + 180 + 3 * i) % 360, 90 + 80 * np.sin(i / 13)
        inside = ((angle - centre + 180) % 360 - 180) ** 2 < (extent / 2) ** 2
        frames[i] += 180 * (inside & (radius > 0.6) & (radius < 0.9))
    return np.clip(frames, 0, 255).astype(np.uint8)


@torch.no_grad()
def make_ensemble(path: Path, frames: np.ndarray, n_members: int = 2, seed: int = 0) -> Path:
    """Save a random ensemble whose logits are centred on `frames` (so votes are mixed)."""
    torch.manual_seed(seed)
    models = [CalciumNet(NetConfig(channels=(4, 4, 8, 8), decoder_channels=8)).eval() for _ in range(n_members)]
    sampler = PolarSampler(SHAPE, CALIB.center_rc, CALIB.pixel_spacing_mm, SPEC, np)
    x = torch.from_numpy(np.asarray(sampler(frames), dtype=np.float32)[:, None])
    for model in models:
        model.head.weight.div_(model(x).std())
        model.head.bias.sub_(model(x).median())
    save_ensemble(path, models, SPEC, {"name": "streaming-test-random"})
    return path


def loopback(model: Path, tmp: Path, **config: object) -> LoopbackEngine:
    """An engine on `model` (torch backend, 1 thread) with ephemeral loopback ports."""
    base = {"frames_address": "tcp://127.0.0.1:*", "results_address": "tcp://127.0.0.1:*",
            "journal_dir": tmp / "journal", "heartbeat_s": 0.1}
    server = create_server(ServerConfig(**{**base, **config}), backend="torch", model=model, settings=SETTINGS,
                           threads=1)
    return LoopbackEngine(server)


def start(stream: str = "s1", pullback: str = "pb1", n_frames: int | None = None) -> p.PullbackStart:
    return p.PullbackStart(stream, pullback, "cartesian", SHAPE, "uint8", CALIB, n_frames)


def test_test_ensemble_votes_on_both_sides(tmp_path: Path) -> None:
    from engine.runtimes import create_runtime

    frames = make_frames(24)
    runtime = create_runtime("torch", model=make_ensemble(tmp_path / "e.safetensors", frames), threads=1)
    sampler = PolarSampler(SHAPE, CALIB.center_rc, CALIB.pixel_spacing_mm, SPEC, np)
    prob, spread = runtime.infer(sampler(frames))
    assert 0.2 < float((prob > 0.5).mean()) < 0.8
    assert float(spread.max()) > 0
