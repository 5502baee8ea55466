"""The generator as F sees it: rig parameters -> F's outputs of the render of them.

With the landmark network as F (ml/nets/landmark_features.py) the five losses never need the
generated image itself, only what F reads of it. This network imitates the renderer followed
by F: from the parameters (in range units) to F's `aligned` landmarks (the face's shape in the
eyes' frame, inter-ocular units) and its `parts` features, trained on the same rendered pairs
R trains on (ml/train/feature_generator.py). It is the stand-in for F after G in the content,
loopback and adversarial losses on real frames; its error against F's reading of real renders
is measured per part and written to the model card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rigs.spec import RigSpec

OUTPUTS = ("aligned", "parts")  # what it imitates: what R's sub-networks read


@dataclass
class FeatureGeneratorConfig:
    dims: dict[str, int] = field(default_factory=dict)  # width of each output in OUTPUTS
    width: int = 512
    depth: int = 3  # hidden layers


class FeatureGenerator(nn.Module):
    """Parameters (N, P) in the rig's units -> {output: (N, dims[output])} in F's units."""

    lo: torch.Tensor
    span: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(self, spec: RigSpec, cfg: FeatureGeneratorConfig) -> None:
        super().__init__()
        if set(cfg.dims) != set(OUTPUTS) or any(d < 1 for d in cfg.dims.values()):
            raise ValueError(
                f"FeatureGenerator dims {cfg.dims}: give a width for each of {OUTPUTS}"
            )
        self.cfg = cfg
        n_out = sum(cfg.dims[k] for k in OUTPUTS)
        layers: list[nn.Module] = []
        width = spec.size
        for _ in range(cfg.depth):
            layers += [nn.Linear(width, cfg.width), nn.GELU()]
            width = cfg.width
        self.net = nn.Sequential(*layers, nn.Linear(width, n_out))
        self.register_buffer("lo", torch.tensor(spec.mins()))
        self.register_buffer("span", torch.tensor(spec.maxs() - spec.mins()).clamp_min(1e-6))
        self.register_buffer("out_mean", torch.zeros(n_out))
        self.register_buffer("out_std", torch.ones(n_out))

    def set_standardisation(self, outputs: torch.Tensor) -> None:
        """The outputs' mean and std from training features (N, sum of dims), joined in
        OUTPUTS order."""
        self.out_mean.copy_(outputs.mean(0))
        self.out_std.copy_(outputs.std(0).clamp_min(1e-4))

    def standardised(self, params: torch.Tensor) -> torch.Tensor:
        """The joined outputs in standard units (what training compares)."""
        return self.net((params - self.lo) / self.span - 0.5)

    def forward(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.out_mean + self.out_std * self.standardised(params)
        return dict(zip(OUTPUTS, y.split([self.cfg.dims[k] for k in OUTPUTS], dim=1), strict=True))

    def join(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([outputs[k] for k in OUTPUTS], dim=1)
