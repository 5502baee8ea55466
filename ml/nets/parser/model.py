"""FaceParser: BiSeNet logits on the rig's labels, f_gb and the facial representation T.

T (Eq. 5): for each facial component, a ResNet stage's feature map times the component's
probability map (the parser's own softmax, resized to that stage) times a weight beta.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ml.nets.parser.bisenet import COMPONENTS, BiSeNet, ParserConfig
from rigs.spec import RigSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FaceParser(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> {"logits", "f_gb", "T": {component: features}}.

    `class_groups` maps each of our labels to the network's own classes; it is the
    identity for parsers trained here and the CelebAMask-HQ mapping for loaded
    face-parsing.PyTorch checkpoints (logits of a group combine by logsumexp).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        spec: RigSpec,
        cfg: ParserConfig | None = None,
        class_groups: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg or ParserConfig(num_classes=len(spec.labels))
        self.labels = list(spec.labels)
        self.net = BiSeNet(self.cfg.num_classes)
        groups = class_groups or [[i] for i in range(len(self.labels))]
        if len(groups) != len(self.labels):
            raise ValueError(
                f"class_groups has {len(groups)} entries, the rig has {len(self.labels)} labels"
            )
        self.groups = groups
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.comp_idx = {
            name: [self.labels.index(lab) for lab in labs] for name, _, labs in COMPONENTS
        }

    def _to_ours(self, logits: torch.Tensor) -> torch.Tensor:
        if all(len(g) == 1 and g[0] == i for i, g in enumerate(self.groups)):
            return logits
        return torch.stack([logits[:, g].logsumexp(dim=1) for g in self.groups], dim=1)

    def forward(self, images: torch.Tensor) -> dict:
        out = self.net((images - self.mean) / self.std)
        logits = self._to_ours(out["logits"])  # (B, L, H, W)
        prob = logits.softmax(dim=1)
        t = {}
        for name, stage, _ in COMPONENTS:
            feat = out[stage]
            region = prob[:, self.comp_idx[name]].sum(dim=1, keepdim=True)
            region = F.interpolate(region, feat.shape[2:], mode="bilinear", align_corners=False)
            t[name] = self.cfg.beta[name] * feat * region
        return {
            "logits": logits,
            "aux16": self._to_ours(out["logits16"]),
            "aux32": self._to_ours(out["logits32"]),
            "f_gb": out["f_gb"],
            "T": t,
        }
