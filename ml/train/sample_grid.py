"""Side-by-side sample grids (render | generated) written as PNG during training."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch


def save_grid(path: Path, real: torch.Tensor, fake: torch.Tensor) -> None:
    """Rows of (render, generated) pairs from (B, 3, S, S) tensors in [0, 1]."""
    pairs = [torch.cat([r, f], dim=2) for r, f in zip(real.cpu(), fake.cpu(), strict=True)]
    grid = torch.cat(pairs, dim=1)  # (3, B*S, 2S)
    img = (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.stem + ".part.png")
    if not cv2.imwrite(str(part), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write sample grid {part}")
    part.replace(path)
