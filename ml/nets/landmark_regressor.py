"""R on the landmark network's F (ml/nets/landmark_features.py): an MLP from F's feature vector
to every rig parameter. F is frozen, so its features of the rendered pairs are computed once
and cached, and training R costs only this head (ml/train/landmark_regressor.py).

The head standardises its input with the training features' mean and std (kept in its
state) and outputs each parameter linearly in its range, clamped to it; the brow style
comes from its own logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ml.nets.landmark_features import DEFAULT_INPUTS, LandmarkF
from rigs.spec import RigSpec


@dataclass
class LandmarkRegressorConfig:
    in_dim: int = 3036  # F's vector: 468 model's landmarks, parts and global feature
    inputs: tuple[str, ...] = DEFAULT_INPUTS  # which of F's outputs R reads (INPUTS there)
    width: int = 512
    depth: int = 2  # hidden layers
    dropout: float = 0.1
    landmark_model: str = "468"  # which MediaPipe network F runs (ml/nets/face_landmark_net.py)
    image_size: int = 192  # the aligned crop the bundle takes
    roll_in_crop: bool = True  # head_roll relative to the aligned crop


class LandmarkRegressor(nn.Module):
    """F's vector (N, D) -> {"params": (N, P), "logits": (N, P) the unclamped outputs in
    range units (0 = minimum, 1 = maximum), "brow_logits": (N, S)}."""

    lo: torch.Tensor
    span: torch.Tensor
    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, spec: RigSpec, cfg: LandmarkRegressorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or LandmarkRegressorConfig()
        self.size = spec.size
        self.cont = [p.index for p in spec.params if not p.discrete]
        self.brow = [p.index for p in spec.params if p.discrete]
        self.n_styles = len(spec.brow_styles)
        layers: list[nn.Module] = []
        width = cfg.in_dim
        for _ in range(cfg.depth):
            layers += [nn.Linear(width, cfg.width), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = cfg.width
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, len(self.cont) + self.n_styles * len(self.brow))
        self.register_buffer("lo", torch.tensor(spec.mins()))
        self.register_buffer("span", torch.tensor(spec.maxs() - spec.mins()))
        self.register_buffer("feat_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("feat_std", torch.ones(cfg.in_dim))

    def set_standardisation(self, features: torch.Tensor) -> None:
        """The input's mean and std from training features (N, D)."""
        self.feat_mean.copy_(features.mean(0))
        self.feat_std.copy_(features.std(0).clamp_min(1e-4))

    def forward(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(self.trunk((v - self.feat_mean) / self.feat_std))
        n = len(self.cont)
        # linear in the range (0 at its minimum, 1 at its maximum), clamped only for the
        # parameters: losses on `logits` never saturate, so AUs that are mostly 0 in the
        # pairs keep their gradient (a sigmoid head stalled them there)
        logits = torch.zeros(v.shape[0], self.size, device=v.device, dtype=out.dtype)
        logits[:, self.cont] = out[:, :n] + 0.5
        params = self.lo + self.span * logits.clamp(0.0, 1.0)
        brow_logits = out[:, n:]
        if self.brow:
            params[:, self.brow] = brow_logits.argmax(1, keepdim=True).to(params.dtype)
        return {"params": params, "logits": logits, "brow_logits": brow_logits}


class LandmarkToParams(nn.Module):
    """F and R as one network for a bundle: ImageNet-normalised crops -> parameters."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, f: LandmarkF, r: LandmarkRegressor, mean: tuple, std: tuple) -> None:
        super().__init__()
        self.f, self.r = f, r
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.r(self.f(x * self.std + self.mean)["vector"])["params"]
