"""Appearance augmentation on image batches (torch), seeded per step for exact resume.

Heavy on purpose: the parser trains on renders and must work on real faces, so colour,
contrast, noise, blur and grey-scale vary widely. Horizontal flips swap the left and right
labels so the mask stays right, or the left and right parameters (`mirror_params`) so the
rig's parameters stay right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rigs.spec import RigSpec


@dataclass
class AugmentConfig:
    brightness: float = 0.4  # factor in [1 - b, 1 + b]
    contrast: float = 0.4
    saturation: float = 0.5
    gamma: float = 0.3  # exponent in [1 - g, 1 + g]
    noise: float = 0.05  # max Gaussian noise std
    blur_p: float = 0.3
    gray_p: float = 0.1
    flip_p: float = 0.5


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def augment(
    images: torch.Tensor,
    masks: torch.Tensor,
    cfg: AugmentConfig,
    g: torch.Generator,
    flip_map: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, 3, H, W) in [0, 1] (CPU), masks (B, H, W) label ids; returns new tensors.

    flip_map[label] is the label after a horizontal flip (left <-> right swapped); ids
    beyond it (255: unknown, in pseudo-labels) stay as they are.
    """
    x = appearance(images, cfg, g)
    b = images.shape[0]
    flip = torch.rand(b, generator=g) < cfg.flip_p
    masks = masks.clone()
    if flip.any():
        x[flip] = x[flip].flip(-1)
        lut = torch.arange(256)
        lut[: len(flip_map)] = flip_map
        masks[flip] = lut[masks[flip].flip(-1)]
    return x, masks


def appearance(images: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Colour, contrast, gamma, blur, grey-scale and noise (no flip): images (B, 3, H, W)
    in [0, 1] (CPU) -> a new tensor. For targets a flip would change (parameters)."""
    b = images.shape[0]
    x = images * _u(g, b, 1 - cfg.brightness, 1 + cfg.brightness).view(b, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * _u(g, b, 1 - cfg.contrast, 1 + cfg.contrast).view(b, 1, 1, 1) + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * _u(g, b, 1 - cfg.saturation, 1 + cfg.saturation).view(b, 1, 1, 1) + gray
    x = x.clamp(0, 1) ** _u(g, b, 1 - cfg.gamma, 1 + cfg.gamma).view(b, 1, 1, 1)
    blur = torch.rand(b, generator=g) < cfg.blur_p
    if blur.any():
        x[blur] = F.avg_pool2d(x[blur], 3, 1, 1, count_include_pad=False)
    to_gray = torch.rand(b, generator=g) < cfg.gray_p
    x[to_gray] = x[to_gray].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    noise = torch.randn(x.shape, generator=g) * _u(g, b, 0, cfg.noise).view(b, 1, 1, 1)
    x = (x + noise).clamp(0, 1)
    return x


def mirror_params(
    images: torch.Tensor, params: torch.Tensor, spec: RigSpec, p: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each face horizontally with probability p and mirror its rig parameters to
    match (`RigSpec.mirrored`): images (B, 3, H, W), params (B, P). Returns new tensors."""
    images, flip = flip_some(images, p, g)
    params = params.clone()
    if flip.any():
        params[flip] = torch.from_numpy(spec.mirrored(params[flip].numpy())).to(params.dtype)
    return images, params


def flip_some(
    images: torch.Tensor, p: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each of images (B, C, H, W) horizontally with probability p: (a new tensor,
    the (B,) bool mask of those flipped)."""
    flip = torch.rand(images.shape[0], generator=g) < p
    images = images.clone()
    if flip.any():
        images[flip] = images[flip].flip(-1)
    return images, flip


def flip_map(labels: tuple[str, ...] | list[str]) -> torch.Tensor:
    """Label id after a horizontal flip: `*_l` <-> `*_r`, others unchanged."""
    out = []
    for name in labels:
        if name.endswith("_l"):
            name = name[:-2] + "_r"
        elif name.endswith("_r"):
            name = name[:-2] + "_l"
        out.append(list(labels).index(name))
    return torch.tensor(out)
