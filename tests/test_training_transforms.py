"""Augmentations move labels with the image and keep intensities in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.transforms import (
    Compose,
    RandomAngleFlip,
    RandomAngularJitter,
    RandomBlur,
    RandomDepthGain,
    RandomDepthScale,
    RandomGainContrast,
    RandomNoiseFloor,
    RandomRotation,
    RandomSpeckle,
    default_augmentation,
)


def _frame_with_bright_arc() -> tuple[torch.Tensor, torch.Tensor]:
    """A frame whose bright A-lines are exactly the labelled ones (A-lines 10..49)."""
    polar = torch.full((128, 360), 0.1)
    labels = torch.zeros(360)
    polar[10:14, 10:50] = 0.9
    labels[10:50] = 1.0
    return polar, labels


def _bright_alines(polar: torch.Tensor) -> torch.Tensor:
    return (polar.max(dim=0).values > 0.5).float()


@pytest.mark.parametrize(
    "transform", [RandomRotation(), RandomAngleFlip(p=1.0), Compose([RandomRotation(), RandomAngleFlip(p=1.0)])]
)
def test_geometric_transforms_move_labels_with_the_image(transform) -> None:
    polar, labels = _frame_with_bright_arc()
    for seed in range(5):
        out, out_labels = transform(polar, labels, np.random.default_rng(seed))
        assert torch.equal(_bright_alines(out), out_labels)
        assert out_labels.sum() == labels.sum()


def test_angle_flip_maps_aline_k_to_a_minus_1_minus_k() -> None:
    polar, labels = _frame_with_bright_arc()
    _, flipped = RandomAngleFlip(p=1.0)(polar, labels, np.random.default_rng(0))
    assert torch.equal(torch.nonzero(flipped)[:, 0], torch.arange(310, 350))


@pytest.mark.parametrize(
    "transform",
    [RandomGainContrast(), RandomDepthGain(), RandomSpeckle(p=1.0), RandomDepthScale(), RandomBlur(p=1.0),
     RandomSpeckle(p=1.0, max_grain=3), RandomBlur(p=1.0, lateral=True), RandomNoiseFloor(p=1.0)],
)
def test_photometric_and_depth_transforms_keep_labels_and_range(transform) -> None:
    polar, labels = _frame_with_bright_arc()
    out, out_labels = transform(polar, labels, np.random.default_rng(1))
    assert out.shape == polar.shape and out.dtype == torch.float32
    assert torch.equal(out_labels, labels)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, polar)


def test_same_generator_seed_same_augmentation() -> None:
    polar, labels = _frame_with_bright_arc()
    augment = default_augmentation()
    a = augment(polar, labels, np.random.default_rng(7))
    b = augment(polar, labels, np.random.default_rng(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_depth_scale_moves_structures_deeper_when_zooming_in() -> None:
    polar, labels = _frame_with_bright_arc()
    out, _ = RandomDepthScale(scale=(1.5, 1.5))(polar, labels, np.random.default_rng(0))
    assert int(out[:, 20].argmax()) > int(polar[:, 20].argmax())


def test_angular_jitter_warps_image_and_labels_together() -> None:
    polar, labels = _frame_with_bright_arc()
    moved = 0
    for seed in range(10):
        out, out_labels = RandomAngularJitter(max_deg=12.0, p=1.0)(polar, labels, np.random.default_rng(seed))
        bright = _bright_alines(out)
        # the bright arc and the labels coincide up to the one A-line of interpolation at each end
        assert float((bright != out_labels).sum()) <= 2
        assert abs(float(out_labels.sum()) - 40) <= 12
        moved += int(not torch.equal(out_labels, labels))
    assert moved >= 5


def test_named_augmentations_keep_the_pre_issue_12_set_reproducible() -> None:
    from training.transforms import AUGMENTATIONS

    basic = [type(t).__name__ for t in AUGMENTATIONS["basic"]().transforms]
    assert basic == ["RandomRotation", "RandomAngleFlip", "RandomDepthScale", "RandomBlur", "RandomGainContrast",
                     "RandomDepthGain", "RandomSpeckle"]  # the shipped model's card
    default = {type(t).__name__ for t in AUGMENTATIONS["default"]().transforms}
    assert {"RandomAngularJitter", "RandomNoiseFloor"} <= default
