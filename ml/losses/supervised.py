"""Direct supervision on rendered pairs (the warm-up option; not one of the paper's five).

Binary cross-entropy on each continuous parameter's position in its range, taken on the
regressor's logits: its gradient, p - t, does not vanish when the sigmoid saturates. With
L1 or MSE through the sigmoid, sparse AUs (0 in most pairs) are pushed to 0 and stay
there (measured: after 3000 warm-up steps every AU output had a spread of 0.005 while head
yaw correlated 0.99 with the truth). The brow style gets cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..regressor import Regressor


def supervised_loss(
    out: dict[str, torch.Tensor], params: torch.Tensor, reg: Regressor
) -> tuple[torch.Tensor, float]:
    """(loss, range-normalised mean absolute error of the continuous parameters, for logs)."""
    brow = reg.index["brow"]
    cont = [i for i in range(reg.size) if i not in brow]
    target = ((params - reg.lo) / reg.span).clamp(0, 1)
    bce = F.binary_cross_entropy_with_logits(out["logits"][:, cont], target[:, cont])
    ce = F.cross_entropy(out["brow_logits"], params[:, brow[0]].round().long())
    mae = ((out["params"] - params) / reg.span).abs()[:, cont].mean().item()
    return bce + ce, mae
