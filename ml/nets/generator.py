"""Generator G: rig parameters -> face image, a differentiable stand-in for the renderer.

Paper section 2.2: DCGAN-style transposed convolutions with instance normalisation,
from a 1 x 1 feature map doubling up to the image size (7 layers at 128 px, 8 at 256,
9 at 512).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ml.nets.param_encoding import ParamEncoder
from rigs.spec import RigSpec


@dataclass
class GeneratorConfig:
    image_size: int = 128
    max_channels: int = 256
    min_channels: int = 32


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(inplace=True),
    )


class Generator(nn.Module):
    """(B, P) parameter vectors in spec order -> (B, 3, S, S) images in [0, 1]."""

    def __init__(self, spec: RigSpec, cfg: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or GeneratorConfig()
        layers = int(math.log2(cfg.image_size))
        if 2**layers != cfg.image_size or layers < 3:
            raise ValueError(f"image_size must be a power of two >= 8, got {cfg.image_size}")
        self.encode = ParamEncoder(spec)
        chans = [max(cfg.min_channels, cfg.max_channels >> max(0, i - 3)) for i in range(layers)]
        # 1x1 -> 2x2 from the encoded parameters, then doubling blocks
        self.stem = nn.Sequential(
            nn.ConvTranspose2d(self.encode.size, chans[0], 2, bias=False),
            nn.InstanceNorm2d(chans[0], affine=True),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[_block(chans[i], chans[i + 1]) for i in range(layers - 2)])
        self.head = nn.ConvTranspose2d(chans[layers - 2], 3, 4, stride=2, padding=1)

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        x = self.encode(params)[:, :, None, None]  # (B, E, 1, 1)
        x = self.blocks(self.stem(x))  # (B, C, S/2, S/2)
        return torch.sigmoid(self.head(x))  # (B, 3, S, S)
