"""Parameter loss (paper Eq. 10): keeps predictions near the rig's reference face, so that
only what the image demands moves away from it: frontal pose and gaze, the base identity
(0.5) and neutral AUs (0).

    L_pr = |pose and gaze|^2 + alpha |identity - 0.5|^2 + beta |AU|^2   (means per group)

alpha and beta (config) are small: identity must still explain the face shape and AUs
the expression; the term only breaks ties between parameters that look alike.
"""

from __future__ import annotations

import torch

from rigs.spec import RigSpec


class ParameterLoss(torch.nn.Module):
    default: torch.Tensor
    scale: torch.Tensor

    def __init__(self, spec: RigSpec, alpha: float, beta: float) -> None:
        super().__init__()
        self.register_buffer("default", torch.tensor(spec.defaults()))
        self.register_buffer("scale", torch.tensor(spec.maxs() - spec.mins()))
        lay = spec.layout()
        self.groups = [
            (list(range(lay["pose"].start, lay["gaze"].stop)), 1.0),
            (list(range(lay["identity"].start, lay["identity"].stop)), alpha),
            (list(range(lay["au"].start, lay["au"].stop)), beta),
        ]

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        d = (params - self.default) / self.scale  # every parameter on a unit range
        return sum(w * d[:, idx].pow(2).mean() for idx, w in self.groups)  # type: ignore[return-value]
