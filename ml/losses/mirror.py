"""Mirror consistency (not one of the paper's five): R's reading of a face's mirror image,
mirrored back into the face's own parameters (rigs/spec.py `mirror`: sides swapped, yaw and
roll negated), must be its reading of the face. It needs no generator and no label, so on real
frames it constrains R where the rendered pairs leave it free.
"""

from __future__ import annotations

import torch
from torch import nn

from rigs.spec import RigSpec


class MirrorLoss(nn.Module):
    """L1 on unit-range parameters between R's parameters of the faces (B, P) and the mirrored
    parameters of their mirror images (B, P), over the continuous parameters of `groups`."""

    source: torch.Tensor
    sign: torch.Tensor
    default: torch.Tensor
    scale: torch.Tensor

    def __init__(self, spec: RigSpec, groups: tuple[str, ...] | None = None) -> None:
        super().__init__()
        source, sign = spec.mirror()
        self.register_buffer("source", torch.from_numpy(source))
        self.register_buffer("sign", torch.from_numpy(sign))
        self.register_buffer("default", torch.tensor(spec.defaults(), dtype=torch.float32))
        span = torch.tensor(spec.maxs() - spec.mins(), dtype=torch.float32).clamp_min(1e-6)
        self.register_buffer("scale", span)
        # the parameters compared: continuous ones of `groups` (None: every group)
        self.cont = [
            p.index for p in spec.params if not p.discrete and (groups is None or p.group in groups)
        ]

    def mirrored(self, params: torch.Tensor) -> torch.Tensor:
        return self.default + self.sign * (params[:, self.source] - self.default[self.source])

    def forward(self, params: torch.Tensor, params_of_mirror: torch.Tensor) -> torch.Tensor:
        d = (params - self.mirrored(params_of_mirror)) / self.scale
        return d[:, self.cont].abs().mean()
