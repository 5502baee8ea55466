"""Network input encoding of rig parameter vectors (bpy-free).

Continuous parameters are scaled from their spec range to [-1, 1]; the discrete brow
style becomes a one-hot block. Sizes come from the spec, never restated.
"""

from __future__ import annotations

import torch

from rigs.spec import RigSpec


class ParamEncoder(torch.nn.Module):
    """(B, P) raw parameter vectors in spec order -> (B, E) network inputs."""

    cont_idx: torch.Tensor
    lo: torch.Tensor
    span: torch.Tensor

    def __init__(self, spec: RigSpec) -> None:
        super().__init__()
        cont = [p for p in spec.params if not p.discrete]
        disc = [p for p in spec.params if p.discrete]
        self.register_buffer("cont_idx", torch.tensor([p.index for p in cont]))
        self.register_buffer("lo", torch.tensor([p.min for p in cont]))
        self.register_buffer("span", torch.tensor([p.max - p.min for p in cont]))
        self.disc_idx = [p.index for p in disc]
        self.disc_sizes = [int(p.max - p.min) + 1 for p in disc]
        self.disc_min = [int(p.min) for p in disc]
        self.size = len(cont) + sum(self.disc_sizes)

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        cont = params[:, self.cont_idx]
        x = [2.0 * (cont - self.lo) / self.span - 1.0]
        for idx, n, lo in zip(self.disc_idx, self.disc_sizes, self.disc_min, strict=True):
            k = (params[:, idx].round().long() - lo).clamp(0, n - 1)
            x.append(torch.nn.functional.one_hot(k, n).to(params.dtype))
        return torch.cat(x, dim=1)
