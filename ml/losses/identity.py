"""Identity loss (paper Eq. 9): 1 - cosine similarity between the identity embeddings of
the emotionless generated face (predicted identity and pose, neutral AUs) and the real face.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def identity_loss(emb_emotionless: torch.Tensor, emb_real: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, D) from the frozen identity network; mean over the batch."""
    return (1.0 - F.cosine_similarity(emb_emotionless, emb_real, dim=1)).mean()


def identity_spread(identity: torch.Tensor, who: torch.Tensor) -> torch.Tensor:
    """The identity loss where F is the landmark network and no identity embedding of a
    generated face exists: identity parameters (B, D) of frames of one face (`who` (B,),
    one index per face) should agree; the mean squared distance to their face's mean."""
    _, inverse = torch.unique(who, return_inverse=True)
    n = int(inverse.max()) + 1
    count = torch.zeros(n, device=identity.device).index_add_(
        0, inverse, torch.ones_like(inverse, dtype=identity.dtype)
    )
    mean = (
        torch.zeros(n, identity.shape[1], device=identity.device).index_add_(0, inverse, identity)
        / count[:, None]
    )
    return (identity - mean[inverse]).pow(2).mean()
