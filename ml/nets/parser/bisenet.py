"""Face parser F: BiSeNet with a ResNet18 context path (paper section 2.3).

Module and parameter names follow face-parsing.PyTorch (zllrunning), so its CelebAMask-HQ
checkpoints (`79999_iter.pth`) load directly (see `ml.nets.parser.celeba`). As there, the
ResNet's 1/8 feature stands in for the spatial path.

Outputs: segmentation logits for the rig's labels, the global feature f_gb (the
feature-fusion module's output) and the facial representation T (Eq. 5): the last three
ResNet stages multiplied by the probability maps of their facial regions and a weight beta.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# T components: (name, ResNet stage, our labels whose probabilities form the region)
COMPONENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("eyes", "feat8", ("eye_l", "eye_r")),
    ("brows", "feat8", ("brow_l", "brow_r")),
    ("nose", "feat16", ("nose",)),
    ("mouth", "feat16", ("upper_lip", "lower_lip", "inner_mouth")),
    (
        "face",
        "feat32",
        (
            "skin",
            "nose",
            "eye_l",
            "eye_r",
            "brow_l",
            "brow_r",
            "upper_lip",
            "lower_lip",
            "inner_mouth",
        ),
    ),
)


@dataclass
class ParserConfig:
    num_classes: int = 12  # the rig's labels (rigs.face_spec.LABELS)
    beta: dict[str, float] = field(default_factory=lambda: {c[0]: 1.0 for c in COMPONENTS})


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.downsample is None else self.downsample(x)
        return F.relu(short + out)


def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class Resnet18(nn.Module):
    """Returns the 1/8, 1/16 and 1/32 stage features (128, 256, 512 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinementModule(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))
        return feat * atten


class ContextPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feat8, feat16, feat32 = self.resnet(x)
        avg_up = F.interpolate(
            self.conv_avg(F.adaptive_avg_pool2d(feat32, 1)), feat32.shape[2:], mode="nearest"
        )
        feat32_up = F.interpolate(self.arm32(feat32) + avg_up, feat16.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(feat32_up)
        feat16_up = F.interpolate(self.arm16(feat16) + feat32_up, feat8.shape[2:], mode="nearest")
        feat16_up = self.conv_head16(feat16_up)
        return feat8, feat16, feat32, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp: torch.Tensor, fcp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat + feat * atten


class BiSeNetOutput(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Images (B, 3, H, W), ImageNet-normalised -> logits (B, C, H, W) plus features."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat8, feat16, feat32, cp8, cp16 = self.cp(x)
        fuse = self.ffm(feat8, cp8)  # f_gb: (B, 256, H/8, W/8)
        size = x.shape[2:]
        up = lambda t: F.interpolate(t, size, mode="bilinear", align_corners=True)  # noqa: E731
        return {
            "logits": up(self.conv_out(fuse)),
            "logits16": up(self.conv_out16(cp8)),
            "logits32": up(self.conv_out32(cp16)),
            "f_gb": fuse,
            "feat8": feat8,
            "feat16": feat16,
            "feat32": feat32,
        }
