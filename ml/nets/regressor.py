"""Parameter regressor R (paper section 2.4, Figure 3) on the face parser's features.

Four sub-networks: head pose and gaze from f_gb; identity, and AU parameters, each from
the eyes, nose, mouth and face components of T; the discrete brow style from the brows
component. Each sub-network: a feature-fusion block (adaptive average pooling of its
feature maps to one size, then concatenation), a stride-2 convolution with batch
normalisation, two attention blocks (a fully connected layer gated by a
squeeze-and-excitation block), and two fully connected layers.

Continuous outputs land inside each parameter's range (min + span * sigmoid); the brow
style comes out as logits, and as its most likely index in the parameter vector.

With `backbone = true`, R carries its own copy of the parser, started from the frozen F's
weights and trained with R on rendered pairs, so its features learn what the AUs need
(a parser trained only to segment carries little AU information: its frozen features
barely move with the AUs). The frozen F still computes the losses; R then takes images
instead of F's features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ml.nets.parser.model import FaceParser
from rigs.spec import RigSpec

# sub-network -> (inputs, spec groups it predicts)
SUBNETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pose": (("f_gb",), ("pose", "gaze")),
    "identity": (("eyes", "nose", "mouth", "face"), ("identity",)),
    "au": (("eyes", "nose", "mouth", "face"), ("au",)),
    "brow": (("brows",), ("brow_style",)),
}
# channels of the parser features (ml.nets.parser.bisenet)
FEATURE_CHANNELS = {"f_gb": 256, "eyes": 128, "brows": 128, "nose": 256, "mouth": 256, "face": 512}


@dataclass
class RegressorConfig:
    image_size: int = 128  # crop size; the fusion pools every map to image_size / 32
    conv_channels: int = 256
    hidden: int = 512
    se_reduction: int = 8
    backbone: bool = False  # R has its own trainable copy of the parser (see above)
    # head_roll is read relative to the aligned crop: trained on head_roll minus the roll
    # the alignment took out (ml/blender/crop_rolls.py); the tracker adds its crop's angle back
    roll_in_crop: bool = False


class AttentionBlock(nn.Module):
    """FC layer whose output is re-weighted by a squeeze-and-excitation gate."""

    def __init__(self, width: int, reduction: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True))
        self.se = nn.Sequential(
            nn.Linear(width, width // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(width // reduction, width),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return x + h * self.se(h)


class SubNet(nn.Module):
    def __init__(self, in_channels: int, n_out: int, cfg: RegressorConfig) -> None:
        super().__init__()
        self.pool_size = max(1, cfg.image_size // 32)  # the 1/32 stage's size
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, cfg.conv_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cfg.conv_channels),
            nn.ReLU(inplace=True),
        )
        flat = cfg.conv_channels * ((self.pool_size + 1) // 2) ** 2
        self.proj = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(inplace=True))
        self.att = nn.Sequential(
            AttentionBlock(cfg.hidden, cfg.se_reduction),
            AttentionBlock(cfg.hidden, cfg.se_reduction),
        )
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.hidden // 2),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden // 2, n_out),
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        # plain average pooling with a fixed kernel (exports to ONNX, unlike adaptive pooling)
        pooled = [F.avg_pool2d(f, int(f.shape[-1]) // self.pool_size) for f in feats]
        x = torch.cat(pooled, dim=1)  # (B, sum C, p, p)
        x = self.conv(x).flatten(1)  # (B, conv * (p/2)^2)
        return self.head(self.att(self.proj(x)))


class Regressor(nn.Module):
    """Parser outputs {"f_gb", "T": {...}} -> {"params": (B, P), "brow_logits": (B, S),
    "logits": (B, P)}: `logits` are the continuous outputs before the sigmoid (0 at the
    brow style), for losses that must not saturate with it. With its own backbone it
    takes [0, 1] images (B, 3, H, W) instead."""

    lo: torch.Tensor
    span: torch.Tensor

    def __init__(self, spec: RigSpec, cfg: RegressorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or RegressorConfig()
        self.size = spec.size
        self.index: dict[str, list[int]] = {}  # sub-network -> parameter indices
        # spec group -> parameter indices (for losses that weigh groups)
        self.group_index = {g: list(range(s.start, s.stop)) for g, s in spec.layout().items()}
        nets = {}
        for name, (inputs, groups) in SUBNETS.items():
            idx = [p.index for g in groups for p in spec.group(g)]
            self.index[name] = idx
            n_out = len(spec.brow_styles) if name == "brow" else len(idx)
            nets[name] = SubNet(sum(FEATURE_CHANNELS[i] for i in inputs), n_out, cfg)
        self.nets = nn.ModuleDict(nets)
        self.backbone = FaceParser(spec) if cfg.backbone else None
        self.register_buffer("lo", torch.tensor(spec.mins()))
        self.register_buffer("span", torch.tensor(spec.maxs() - spec.mins()))
        covered = sorted(i for v in self.index.values() for i in v)
        if covered != list(range(spec.size)):
            raise ValueError("the sub-networks must cover every rig parameter exactly once")

    def forward(self, x: dict | torch.Tensor) -> dict[str, torch.Tensor]:
        if isinstance(x, dict):
            parsed = x
        elif self.backbone is not None:
            parsed = self.backbone(x)
        else:
            raise TypeError("this regressor has no backbone: give it the parser's features")
        feats = {"f_gb": parsed["f_gb"], **parsed["T"]}
        b = parsed["f_gb"].shape[0]
        params = torch.zeros(b, self.size, device=feats["f_gb"].device)
        logits = torch.zeros(b, self.size, device=feats["f_gb"].device)
        brow_logits = torch.zeros(0)
        for name, (inputs, _) in SUBNETS.items():
            out = self.nets[name]([feats[i] for i in inputs])
            idx = self.index[name]
            if name == "brow":
                brow_logits = out
                params[:, idx] = out.argmax(dim=1, keepdim=True).to(params.dtype)
            else:
                params[:, idx] = self.lo[idx] + self.span[idx] * torch.sigmoid(out)
                logits[:, idx] = out
        return {"params": params, "brow_logits": brow_logits, "logits": logits}


class FaceToParams(nn.Module):
    """Parser + regressor as one network: normalised crops -> parameter vectors (for ONNX).

    The parser expects [0, 1] images; bundles feed ImageNet-normalised crops, so the
    normalisation is undone first (the parser applies its own). A regressor with its own
    backbone uses that backbone, not `parser`."""

    def __init__(self, parser: nn.Module, regressor: Regressor) -> None:
        super().__init__()
        own = regressor.backbone
        self.parser: nn.Module = own if own is not None else parser
        self.regressor = regressor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x * self.parser.std + self.parser.mean  # type: ignore[operator]
        return self.regressor(self.parser(images))["params"]
