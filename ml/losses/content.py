"""Content loss (paper Eq. 8): L1 between the facial representations T of the generated
face G(R(I)) and of the real face I, summed over the five components."""

from __future__ import annotations

import torch


def content_loss(t_fake: dict[str, torch.Tensor], t_real: dict[str, torch.Tensor]) -> torch.Tensor:
    if t_fake.keys() != t_real.keys():
        raise ValueError(f"T components differ: {sorted(t_fake)} vs {sorted(t_real)}")
    return torch.stack([(t_fake[k] - t_real[k]).abs().mean() for k in t_fake]).sum()
