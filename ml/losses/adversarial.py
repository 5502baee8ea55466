"""Adversarial loss (paper Eq. 12): a small discriminator looks at the mouth-region
representation T_mouth of generated faces and tells the base face (base identity, neutral
AUs) from the emotionless face the regressor predicts (its identity, neutral AUs), both
at the predicted pose. The regressor is trained to fool it, so the identity parameters
cannot carry mouth expression that belongs in the AU parameters.

This follows the issue's reading of Eq. 12; the non-saturating GAN loss (Goodfellow et al.
2014) is used for both players. Only R's weights (and the discriminator's, in its own
step) train; G and F stay frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MouthDiscriminator(nn.Module):
    """T_mouth (B, C, h, w) -> one logit per face: base face (1) or emotionless (0)."""

    def __init__(self, channels: int = 256, width: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, 1),
        )

    def forward(self, mouth: torch.Tensor) -> torch.Tensor:
        return self.net(mouth).squeeze(1)


def discriminator_loss(
    d: nn.Module, mouth_base: torch.Tensor, mouth_emotionless: torch.Tensor
) -> torch.Tensor:
    """The discriminator's step: inputs detached, so only D learns from it."""
    real, fake = d(mouth_base.detach()), d(mouth_emotionless.detach())
    return F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def adversarial_loss(d: nn.Module, mouth_emotionless: torch.Tensor) -> torch.Tensor:
    """The regressor's term: make the emotionless face's mouth pass as the base face's."""
    logit = d(mouth_emotionless)
    return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
