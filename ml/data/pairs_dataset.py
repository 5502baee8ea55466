"""Torch dataset over rendered pairs: reads one pair per item, never the whole set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ml.data.pairs_layout import (
    CROP_ROLL_FILE,
    PairsError,
    check_spec,
    list_pairs,
    read_crop_rolls,
    read_pair,
)


class PairsDataset(Dataset):
    """Items: image (3, S, S) float in [0, 1], mask (S, S) long, lm68 (68, 2), lm5 (5, 2),
    params (P,) float, all as tensors; with `crop_roll`, also crop_roll () float, the
    degrees of roll the pair's alignment took out (DIR/crop_roll.npy)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        holdout_every: int = 20,
        crop_roll: bool = False,
    ) -> None:
        """split: "all", "train" or "heldout"; every `holdout_every`-th pair (by index) is
        held out, so the split never depends on how many pairs exist yet."""
        self.root = Path(root)
        if split not in ("all", "train", "heldout"):
            raise ValueError(f"split must be all, train or heldout, not {split!r}")
        check_spec(self.root)
        stems = list_pairs(self.root)
        held = [s for s in stems if int(s.name) % holdout_every == 0]
        self.stems = {
            "all": stems,
            "heldout": held,
            "train": [s for s in stems if int(s.name) % holdout_every != 0],
        }[split]
        if not self.stems:
            raise PairsError(f"{self.root} holds no complete pairs in split {split!r}")
        self.crop_rolls = read_crop_rolls(self.root) if crop_roll else None
        if self.crop_rolls is not None:
            late = [s for s in self.stems if not np.isfinite(self.crop_rolls[int(s.name)])]
            if late:
                raise PairsError(
                    f"{self.root / CROP_ROLL_FILE} has no angle for {len(late)} pairs (first: "
                    f"{late[0]}); run `python ml/blender/crop_rolls.py -- --pairs {self.root}` again"
                )

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p = read_pair(self.stems[i])
        image = torch.from_numpy(np.ascontiguousarray(p.image.transpose(2, 0, 1))).float() / 255.0
        extra = {}
        if self.crop_rolls is not None:
            extra["crop_roll"] = torch.tensor(float(self.crop_rolls[int(self.stems[i].name)]))
        return {
            **extra,
            "image": image,
            "mask": torch.from_numpy(p.mask.astype(np.int64)),
            "lm68": torch.from_numpy(p.lm68),
            "lm5": torch.from_numpy(p.lm5),
            "params": torch.from_numpy(p.params),
        }
