"""Perceptual loss on VGG16 relu2_2, relu3_3 and relu4_3 (paper section 2.2).

Features are unit-normalised over channels at every position (as in LPIPS, without
learned weights), so each layer contributes on the same scale whatever its depth.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.nets.vgg import VGG16Features


def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True) + eps).sqrt()


class PerceptualLoss(nn.Module):
    """Mean squared distance of unit-normalised VGG16 features, averaged over layers."""

    def __init__(self, vgg: VGG16Features) -> None:
        super().__init__()
        self.vgg = vgg.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # frozen network: never in training mode
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.vgg(x), self.vgg(y)
        terms = [(_unit(fx[k]) - _unit(fy[k])).pow(2).sum(dim=1).mean() for k in fx]
        return torch.stack(terms).mean()
