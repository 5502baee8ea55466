"""Identity loss (paper Eq. 9): 1 - cosine similarity between the identity embeddings of
the emotionless generated face (predicted identity and pose, neutral AUs) and the real face.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def identity_loss(emb_emotionless: torch.Tensor, emb_real: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, D) from the frozen identity network; mean over the batch."""
    return (1.0 - F.cosine_similarity(emb_emotionless, emb_real, dim=1)).mean()
