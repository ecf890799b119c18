"""Loss for weak, angle-wise labels: binary cross-entropy plus a soft Dice over the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 - soft Dice of sigmoid(logits) against target, pooled over the whole batch.

    Pooled rather than per frame: most frames hold no calcium, where a per-frame Dice is
    undefined; `eps` keeps an all-negative batch finite.
    """
    prob = torch.sigmoid(logits)
    intersection = (prob * target).sum()
    return 1.0 - (2.0 * intersection + eps) / (prob.sum() + target.sum() + eps)


class BceDiceLoss(torch.nn.Module):
    """`bce_weight * BCE + dice_weight * soft Dice` on (B, A) logits and {0, 1} targets."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0, pos_weight: float = 1.0) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.pos_weight: Tensor
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)
        return self.bce_weight * bce + self.dice_weight * soft_dice_loss(logits, target)
