"""Loopback loss (paper Eq. 11): faces that G renders from the regressor's own predictions,
once with the AUs reset to neutral and once with the identity reset to the base face, must
come back through F and R as the parameters that made them. This ties each parameter group
to what it changes in the image.

    L_lp = |R(F(G(x_base_au))) - x_base_au| + lambda_le |R(F(G(x_base_id))) - x_base_id|

Distances are L1 on unit-range parameters; the brow style, discrete, by cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rigs.spec import RigSpec


def with_base(params: torch.Tensor, spec: RigSpec, group: str) -> torch.Tensor:
    """A copy of `params` with one group reset to its defaults (neutral AUs, base identity)."""
    out = params.clone()
    sl = spec.layout()[group]
    out[:, sl] = torch.tensor(spec.defaults()[sl], device=params.device)
    return out


def loopback_distance(
    pred: torch.Tensor, brow_logits: torch.Tensor, target: torch.Tensor, spec: RigSpec
) -> torch.Tensor:
    cont = [p.index for p in spec.params if not p.discrete]
    scale = torch.tensor(spec.maxs() - spec.mins(), device=pred.device)[cont]
    dist = ((pred[:, cont] - target[:, cont]).abs() / scale).mean()
    style = target[:, spec.param("brow_style").index].round().long()
    return dist + F.cross_entropy(brow_logits, style)


def loopback_loss(
    cycle_au: tuple[torch.Tensor, torch.Tensor],
    target_au: torch.Tensor,
    cycle_id: tuple[torch.Tensor, torch.Tensor],
    target_id: torch.Tensor,
    spec: RigSpec,
    lambda_le: float,
) -> torch.Tensor:
    """cycle_*: (params, brow_logits) that R predicts for G's faces made from target_*."""
    return loopback_distance(*cycle_au, target_au, spec) + lambda_le * loopback_distance(
        *cycle_id, target_id, spec
    )
