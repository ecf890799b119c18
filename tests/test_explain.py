"""`ivuscal explain`: a PNG of the frame, its predicted arc and the ensemble's attention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from engine.commands.explain import command, explain_frame, upsample_attention
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import load_ensemble, save_ensemble
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, write_pullback


@pytest.fixture(scope="module")
def pullback(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 frames 256 x 256 at 0.04 mm: speckled wall with a bright arc and shadow at 0-90 degrees."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:256, 0:256]
    radius = np.hypot(rows - 128, cols - 128) * 0.04
    angle = np.degrees(np.arctan2(rows - 128, cols - 128)) % 360
    frames = np.empty((20, 256, 256), np.uint8)
    for i in range(20):
        image = np.where(radius > 1.5, 90.0, 10.0) * rng.uniform(0.5, 1.5, radius.shape)
        arc = angle < 90
        image[arc & (radius > 1.6) & (radius < 1.8)] = 250
        image[arc & (radius >= 1.8)] *= 0.1
        frames[i] = np.clip(image, 0, 255)
    return write_pullback(tmp_path_factory.mktemp("pb") / "pb.dcm", frames, pixel_spacing_mm=0.04)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        members.append(CalciumNet(NetConfig(channels=(4, 8, 8, 8), decoder_channels=8)).eval())
    path = tmp_path_factory.mktemp("model") / "ens.safetensors"
    save_ensemble(path, members, InputSpec(), {"name": "test"})
    return path


def test_attention_upsampling_is_circular_and_keeps_the_grid() -> None:
    cam = torch.zeros(1, 8, 45)
    cam[0, :, 0] = 1.0  # the first coarse column: A-lines 0..7
    up = upsample_attention(cam, InputSpec())
    assert up.shape == (1, 128, 360)
    # coarse column 0 is centred between A-lines 3 and 4
    assert float(up[0, 0, 3]) == pytest.approx(float(up[0, 0, 4])) and float(up[0, 0, 3]) > 0.9
    assert float(up[0, 0, 358]) > 0.0  # bleeds across 0 degrees, not into a seam
    assert float(up[0, 0, 180]) == 0.0


def test_explanation_of_a_frame(pullback: Path, model: Path) -> None:
    e = explain_frame(pullback, 10, load_ensemble(model))
    assert e.image.shape == (256, 256) and e.image.dtype == np.uint8
    assert e.attention.shape == (128, 360) and 0.0 <= e.attention.min() and e.attention.max() <= 1.0 + 1e-6
    assert e.probability.shape == (360,) and e.calcium.shape == (360,) and e.calcium.dtype == bool


def test_command_writes_a_png_and_no_identifier(pullback: Path, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    result = CliRunner().invoke(command, [str(pullback), "--frame", "3", "--out", str(out), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 300
    assert PATIENT_NAME not in result.output and PATIENT_ID not in result.output


def test_frame_outside_the_pullback_is_bad_input(pullback: Path, model: Path, tmp_path: Path) -> None:
    from engine.cli import main

    status = main(["explain", str(pullback), "--frame", "20", "--out", str(tmp_path / "y.png"), "--model", str(model)])
    assert status == 2
