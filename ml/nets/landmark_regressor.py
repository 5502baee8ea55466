"""R on the landmark network's F (ml/nets/landmark_features.py): an MLP from F's feature vector
to every rig parameter, or (paper section 2.4) one sub-network per parameter group (pose,
gaze, AUs, identity with the brow style), each reading its own choice of F's outputs. F is
frozen, so its features of the rendered pairs are computed once and cached, and training R
costs only these heads (ml/train/landmark_regressor.py).

The head standardises its input with the training features' mean and std (kept in its
state) and outputs each parameter linearly in its range, clamped to it; the brow style
comes from its own logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # per parameter group (SUB_NETWORKS), the outputs of `inputs` its sub-network reads;
    # empty: one network reads all of `inputs` for every parameter
    group_inputs: dict[str, list[str]] = field(default_factory=dict)
    input_dims: dict[str, int] = field(default_factory=dict)  # each input's width in F's vector


# R's sub-networks and the rig groups each predicts (the brow style goes with identity)
SUB_NETWORKS = {
    "pose": ("pose",),
    "gaze": ("gaze",),
    "au": ("au",),
    "identity": ("identity", "brow_style"),
}


class LandmarkRegressorError(ValueError):
    """A regressor configuration that cannot be built (names the setting)."""


def _mlp(in_dim: int, out_dim: int, cfg: LandmarkRegressorConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(cfg.depth):
        layers += [nn.Linear(width, cfg.width), nn.GELU(), nn.Dropout(cfg.dropout)]
        width = cfg.width
    return nn.Sequential(*layers, nn.Linear(width, out_dim))


class LandmarkRegressor(nn.Module):
    """F's vector (N, D) -> {"params": (N, P), "logits": (N, P) the unclamped outputs in
    range units (0 = minimum, 1 = maximum), "brow_logits": (N, S)}."""

    lo: torch.Tensor
    span: torch.Tensor
    order: torch.Tensor
    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, spec: RigSpec, cfg: LandmarkRegressorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or LandmarkRegressorConfig()
        self.size = spec.size
        self.cont = [p.index for p in spec.params if not p.discrete]
        self.brow = [p.index for p in spec.params if p.discrete]
        self.n_styles = len(spec.brow_styles)
        n_out = len(self.cont) + self.n_styles * len(self.brow)
        self.subnets = nn.ModuleDict()
        if not cfg.group_inputs:
            self.net = _mlp(cfg.in_dim, n_out, cfg)
        else:
            self._build_subnets(spec, cfg)
        self.register_buffer("lo", torch.tensor(spec.mins()))
        self.register_buffer("span", torch.tensor(spec.maxs() - spec.mins()))
        self.register_buffer("feat_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("feat_std", torch.ones(cfg.in_dim))

    def _build_subnets(self, spec: RigSpec, cfg: LandmarkRegressorConfig) -> None:
        """One MLP per SUB_NETWORKS entry on the columns of its inputs; `order` maps the
        joined sub-network outputs back to the layout of one network's output."""
        unknown = set(cfg.group_inputs) - set(SUB_NETWORKS)
        if unknown or set(cfg.group_inputs) != set(SUB_NETWORKS):
            raise LandmarkRegressorError(
                f"group_inputs names {sorted(cfg.group_inputs)}: give each of {list(SUB_NETWORKS)}"
            )
        starts, at = {}, 0
        for name in cfg.inputs:
            if name not in cfg.input_dims:
                raise LandmarkRegressorError(f"input_dims has no width for input {name!r}")
            starts[name] = (at, at + int(cfg.input_dims[name]))
            at += int(cfg.input_dims[name])
        if at != cfg.in_dim:
            raise LandmarkRegressorError(f"input_dims add up to {at}, in_dim is {cfg.in_dim}")
        position = {i: k for k, i in enumerate(self.cont)}  # param index -> output column
        brow_at = len(self.cont)
        order: list[int] = []
        for sub, groups in SUB_NETWORKS.items():
            reads = cfg.group_inputs[sub]
            missing = [r for r in reads if r not in starts]
            if missing or not reads:
                raise LandmarkRegressorError(
                    f"group_inputs.{sub} = {list(reads)}: each one of inputs {list(cfg.inputs)}"
                )
            cols = torch.cat([torch.arange(*starts[r]) for r in reads])
            self.register_buffer(f"cols_{sub}", cols)
            params = [p.index for g in groups for p in spec.group(g) if not p.discrete]
            outs = [position[i] for i in params]
            if "brow_style" in groups:
                outs += list(range(brow_at, brow_at + self.n_styles * len(self.brow)))
            order += outs
            self.subnets[sub] = _mlp(len(cols), len(outs), cfg)
        if sorted(order) != list(range(len(self.cont) + self.n_styles * len(self.brow))):
            raise LandmarkRegressorError("the sub-networks do not cover every parameter once")
        self.register_buffer("order", torch.argsort(torch.tensor(order)))

    def set_standardisation(self, features: torch.Tensor) -> None:
        """The input's mean and std from training features (N, D)."""
        self.feat_mean.copy_(features.mean(0))
        self.feat_std.copy_(features.std(0).clamp_min(1e-4))

    def forward(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        z = (v - self.feat_mean) / self.feat_std
        if self.subnets:
            cols: dict[str, torch.Tensor] = {s: getattr(self, f"cols_{s}") for s in self.subnets}
            out = torch.cat([net(z[:, cols[s]]) for s, net in self.subnets.items()], dim=1)
            out = out[:, self.order]
        else:
            out = self.net(z)
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
    """F and R as one network for a bundle: ImageNet-normalised crops -> parameters, F's
    landmarks in the crop's pixels (N, P, 3: x, y and depth in the same unit) and F's
    face-presence probability (N,)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, f: LandmarkF, r: LandmarkRegressor, mean: tuple, std: tuple) -> None:
        super().__init__()
        self.f, self.r = f, r
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.f(x * self.std + self.mean)
        centre = torch.tensor([0.5, 0.5, 0.0], device=x.device, dtype=x.dtype)
        landmarks = (feats["landmarks"] + centre) * x.shape[-1]
        return self.r(feats["vector"])["params"], landmarks, feats["presence"].reshape(-1)
