"""Train the face parser F on rendered pairs (exact masks) with heavy augmentation.

    python -m ml.train.parser --config ml/configs/parser.toml [--set optim.steps=100]

Same run folder behaviour as the generator: atomic `last.pt`, exact resume, DDP through
torchrun, CUDA with mixed precision when present.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ml.data.augment import AugmentConfig, augment, flip_map
from ml.data.pairs_dataset import PairsDataset
from ml.data.pseudo_labels import UNKNOWN, LabelledFaces
from ml.device import Runtime
from ml.nets.parser.bisenet import ParserConfig
from ml.nets.parser.model import FaceParser
from ml.train.loop import OptimConfig, RunConfig, Trainer, run_stage
from rigs.spec import load_spec


@dataclass
class ParserDataConfig:
    pairs: str = "data/pairs"
    holdout_every: int = 20
    workers: int = 2
    # pseudo-labelled real frames (ml.data.pseudo_labels .npz; its held-out stretch is never
    # drawn), mixed into every batch; "" for renders only
    real_labels: str = ""
    real_per_batch: int = 4


@dataclass
class ParserLossConfig:
    main: float = 1.0
    aux: float = 0.4  # each of the two auxiliary heads (BiSeNet's deep supervision)


@dataclass
class TrainParserConfig:
    model: ParserConfig = field(default_factory=ParserConfig)
    data: ParserDataConfig = field(default_factory=ParserDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, beta1=0.9))
    loss: ParserLossConfig = field(default_factory=ParserLossConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(dir="runs/parser"))


def colorize(mask: np.ndarray) -> np.ndarray:
    """(H, W) label ids -> (H, W, 3) uint8 RGB for pictures."""
    ramp = ((np.arange(256) * 20) % 256).astype(np.uint8).reshape(-1, 1)
    lut = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)  # (256, 1, 3) BGR
    rgb = lut[mask.astype(np.uint8), 0, ::-1].copy()
    rgb[mask == 0] = 0
    return rgb


class ParserTrainer(Trainer):
    kind = "parser"

    def __init__(self, cfg: TrainParserConfig, rt: Runtime) -> None:
        spec = load_spec()
        if cfg.model.num_classes != len(spec.labels):
            raise ValueError(f"model.num_classes must be the rig's {len(spec.labels)} labels")
        torch.manual_seed(cfg.run.seed)
        data = PairsDataset(cfg.data.pairs, "train", cfg.data.holdout_every)
        super().__init__(cfg, rt, spec, FaceParser(spec, cfg.model), data, cfg.data.workers)
        self.flip = flip_map(spec.labels)
        self.real = LabelledFaces(cfg.data.real_labels, "train") if cfg.data.real_labels else None

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        g = torch.Generator().manual_seed(self.cfg.run.seed * 7919 + self.step)
        images, masks = batch["image"], batch["mask"]
        if self.real is not None and len(self.real):
            pick = torch.randint(len(self.real), (self.cfg.data.real_per_batch,), generator=g)
            items = [self.real[int(i)] for i in pick]
            images = torch.cat([images, torch.stack([it["image"] for it in items])])
            masks = torch.cat([masks, torch.stack([it["mask"] for it in items])])
        images, masks = augment(images, masks, self.cfg.augment, g, self.flip)
        images, masks = images.to(self.rt.device), masks.to(self.rt.device)
        with self.autocast():
            out = self.net(images)
        ce = lambda logits: F.cross_entropy(logits.float(), masks, ignore_index=UNKNOWN)  # noqa: E731
        main = ce(out["logits"])
        aux = ce(out["aux16"]) + ce(out["aux32"])
        total = self.cfg.loss.main * main + self.cfg.loss.aux * aux
        return total, {"ce": main.item(), "aux": aux.item(), "loss": total.item()}

    def samples(self) -> None:
        held = PairsDataset(self.cfg.data.pairs, "heldout", self.cfg.data.holdout_every)
        items = [held[i] for i in range(min(8, len(held)))]
        images = torch.stack([it["image"] for it in items]).to(self.rt.device)
        self.model.eval()
        with torch.no_grad():
            pred = self.model(images)["logits"].argmax(dim=1).cpu().numpy()
        self.train_mode()
        rows = []
        for it, p in zip(items, pred, strict=True):
            img = (it["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            rows.append(np.hstack([img, colorize(it["mask"].numpy()), colorize(p)]))
        path = self.run / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        "python -m ml.train.parser", __doc__ or "", TrainParserConfig, ParserTrainer, argv
    )


if __name__ == "__main__":
    sys.exit(main())
