"""Direct supervision on rendered pairs (the warm-up option; not one of the paper's five).

Binary cross-entropy on each continuous parameter's position in its range, taken on the
regressor's logits: its gradient, p - t, does not vanish when the sigmoid saturates. With
L1 or MSE through the sigmoid, sparse AUs (0 in most pairs) are pushed to 0 and stay
there (measured: after 3000 warm-up steps every AU output had a spread of 0.005 while head
yaw correlated 0.99 with the truth). The brow style gets cross-entropy.

`groups` weighs the spec's parameter groups (identity, au, pose, gaze): the BCE is
averaged inside each group and the group means are averaged with these weights. Without
it every continuous parameter weighs the same, so the 64 identity parameters, uniform in
every pair, outweigh the 34 sparse AU parameters and the 3 pose angles in what the shared
backbone learns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.config import ConfigError
from ml.nets.regressor import Regressor
from rigs.spec import GROUPS as SPEC_GROUPS

GROUPS = tuple(g for g in SPEC_GROUPS if g != "brow_style")  # the continuous groups


def check_groups(groups: dict[str, float], key: str = "loss.supervised_groups") -> None:
    """A ConfigError naming the key unless every group is known and the weights are usable."""
    for name, w in groups.items():
        if name not in GROUPS:
            raise ConfigError(f"{key}: unknown group {name!r}; the groups are {', '.join(GROUPS)}")
        if not isinstance(w, int | float) or w < 0:
            raise ConfigError(f"{key}.{name} must be a number >= 0, not {w!r}")
    if groups and sum(groups.values()) <= 0:
        raise ConfigError(f"{key}: at least one group needs a weight above 0")


def supervised_loss(
    out: dict[str, torch.Tensor],
    params: torch.Tensor,
    reg: Regressor,
    groups: dict[str, float] | None = None,
) -> tuple[torch.Tensor, float]:
    """(loss, range-normalised mean absolute error of the continuous parameters, for logs).

    `groups` (name -> weight; a missing group weighs 0) averages per group; None or empty
    averages over every continuous parameter alike."""
    brow = reg.index["brow"]
    cont = [i for i in range(reg.size) if i not in brow]
    target = ((params - reg.lo) / reg.span).clamp(0, 1)
    bce_all = F.binary_cross_entropy_with_logits(out["logits"], target, reduction="none")
    if groups:
        check_groups(groups)
        per = {g: bce_all[:, reg.group_index[g]].mean() for g, w in groups.items() if w > 0}
        bce = sum(groups[g] * v for g, v in per.items()) / sum(groups[g] for g in per)
    else:
        bce = bce_all[:, cont].mean()
    ce = F.cross_entropy(out["brow_logits"], params[:, brow[0]].round().long())
    mae = ((out["params"] - params) / reg.span).abs()[:, cont].mean().item()
    return bce + ce, mae
