"""LightCNN-29 v2 (Wu et al., "A Light CNN for Deep Face Representation with Noisy Labels",
IEEE TIFS 2018), the identity network of Song et al. 2020.

Module names follow the public implementation's `LightCNN_29Layers_v2`
(github.com/AlfredXiangWu/LightCNN, `light_cnn.py`), so its official checkpoint
(`LightCNN_29Layers_V2_checkpoint.pth.tar`: a dict whose `state_dict` was saved from a
`DataParallel` model, keys prefixed `module.`) loads with `strict=True`. Those weights are
not on any package registry; `load_lightcnn` takes them from a path a user supplies.

Input: 128 x 128 grayscale in [0, 1] (the official `extract_features.py` reads the aligned
crop with `cv2.IMREAD_GRAYSCALE` and applies `ToTensor()`). Output: the 256-d `fc` feature,
the one the paper's identity loss compares.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ml.nets.identity._common import IdentityWeightsError, fit_size

log = logging.getLogger(__name__)

# ITU-R BT.601 luma, what OpenCV's IMREAD_GRAYSCALE / COLOR_RGB2GRAY use.
LUMA_RGB = (0.299, 0.587, 0.114)
OFFICIAL_NUM_CLASSES = 80013  # MS-Celeb-1M identities of the released v2 checkpoint


@dataclass(frozen=True)
class LightCNNConfig:
    """Sizes of LightCNN-29 v2; the defaults are the released checkpoint's."""

    num_classes: int = OFFICIAL_NUM_CLASSES
    input_size: int = 128
    feature_dim: int = 256
    blocks: tuple[int, int, int, int] = (1, 2, 3, 4)


class MFM(nn.Module):
    """Max-Feature-Map: a conv (or linear) layer with 2n outputs, then the elementwise max of
    its two halves. It is LightCNN's activation: a competitive, sparse non-linearity."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1
    ) -> None:
        super().__init__()
        self.out_channels = cout
        self.filter = nn.Conv2d(cin, 2 * cout, kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.filter(x), self.out_channels, dim=1)
        return torch.max(a, b)


class Group(nn.Module):
    """1x1 MFM (channel mixing) followed by a kxk MFM, LightCNN's `group`."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv_a = MFM(cin, cin, 1, 1, 0)
        self.conv = MFM(cin, cout, kernel, 1, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv_a(x))


class ResBlock(nn.Module):
    """Two 3x3 MFMs plus identity shortcut (no normalisation, as in the original)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = MFM(channels, channels)
        self.conv2 = MFM(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + x


def _pool(x: torch.Tensor) -> torch.Tensor:
    """v2 halves resolution with max-pool plus avg-pool (v1 used max-pool alone)."""
    return F.max_pool2d(x, 2) + F.avg_pool2d(x, 2)


class LightCNN29v2(nn.Module):
    """Grayscale faces (B, 1, 128, 128) in [0, 1] -> 256-d identity features (B, 256).

    Other input sizes are resized bilinearly (differentiable). `logits(feature)` gives the
    training classifier's output, which the identity loss does not need.
    """

    def __init__(self, cfg: LightCNNConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LightCNNConfig()
        b = self.cfg.blocks
        self.conv1 = MFM(1, 48, 5, 1, 2)
        self.block1 = nn.Sequential(*[ResBlock(48) for _ in range(b[0])])
        self.group1 = Group(48, 96)
        self.block2 = nn.Sequential(*[ResBlock(96) for _ in range(b[1])])
        self.group2 = Group(96, 192)
        self.block3 = nn.Sequential(*[ResBlock(192) for _ in range(b[2])])
        self.group3 = Group(192, 128)
        self.block4 = nn.Sequential(*[ResBlock(128) for _ in range(b[3])])
        self.group4 = Group(128, 128)
        side = self.cfg.input_size // 16
        self.fc = nn.Linear(side * side * 128, self.cfg.feature_dim)
        self.fc2 = nn.Linear(self.cfg.feature_dim, self.cfg.num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = fit_size(x, self.cfg.input_size)  # (B, 1, 128, 128)
        x = _pool(self.conv1(x))  # (B, 48, 64, 64)
        x = _pool(self.group1(self.block1(x)))  # (B, 96, 32, 32)
        x = _pool(self.group2(self.block2(x)))  # (B, 192, 16, 16)
        x = self.group3(self.block3(x))  # (B, 128, 16, 16)
        x = _pool(self.group4(self.block4(x)))  # (B, 128, 8, 8)
        return self.fc(x.flatten(1))  # (B, 256)

    def logits(self, feature: torch.Tensor) -> torch.Tensor:
        """Identity-classifier logits (B, num_classes) from features (B, 256)."""
        return self.fc2(feature)


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma with OpenCV's weights, so rendered RGB crops
    reach LightCNN the way the official pipeline's grayscale files did."""
    w = rgb.new_tensor(LUMA_RGB).view(1, 3, 1, 1)
    return (rgb * w).sum(dim=1, keepdim=True)


def unwrap_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The bare state dict from an official checkpoint ({"state_dict": ..., "module."
    prefixes from DataParallel}) or from a bare state dict."""
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise IdentityWeightsError(f"{source}: not a LightCNN checkpoint or state dict")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise IdentityWeightsError(f"{source}: entry {key!r} is not a tensor")
        out[key.removeprefix("module.")] = value
    return out


def load_lightcnn(
    path: str | Path, cfg: LightCNNConfig | None = None, trusted: bool = False
) -> LightCNN29v2:
    """LightCNN-29 v2 with the weights in `path`, frozen and in eval mode.

    The classifier size comes from the checkpoint's `fc2.weight` unless `cfg` fixes it,
    so checkpoints fine-tuned on other identity sets load too. Loading is strict: a missing
    or extra key is an error naming the file, never a silently random layer. The file is
    unpickled with torch's weights-only loader; `trusted=True` lifts that restriction for
    old checkpoints holding other Python objects (it can run code from the file).
    """
    path = Path(path)
    if not path.is_file():
        raise IdentityWeightsError(f"no LightCNN checkpoint at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # pickle, zip and tensor errors all mean "not this format"
        why = " ".join(str(exc).split())[:400]  # the unpickler's messages run long
        hint = "" if trusted else "; if the file is from a source you trust, pass trusted=True"
        raise IdentityWeightsError(
            f"{path}: cannot read as a torch checkpoint ({why}){hint}"
        ) from exc
    state = unwrap_state_dict(obj, str(path))
    if cfg is None:
        if "fc2.weight" not in state:
            raise IdentityWeightsError(f"{path}: no fc2.weight, not a LightCNN-29 v2 checkpoint")
        cfg = LightCNNConfig(num_classes=int(state["fc2.weight"].shape[0]))
    model = LightCNN29v2(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        why = " ".join(str(exc).split())  # torch's multi-line message on one line
        raise IdentityWeightsError(f"{path}: not a LightCNN-29 v2 state dict: {why}") from exc
    log.info("LightCNN-29 v2 loaded from %s (%d classes)", path, cfg.num_classes)
    return model.eval().requires_grad_(False)
