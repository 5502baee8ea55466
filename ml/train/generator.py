"""Train the generator G on rendered pairs: L1 + lambda * VGG16 perceptual loss.

    python -m ml.train.generator --config ml/configs/generator.toml [--set optim.steps=100]
    torchrun --nproc_per_node 2 -m ml.train.generator --config ml/configs/generator.toml

Checkpoints (`RUN/last.pt`) are written atomically every `run.ckpt_every` steps; a rerun
with the same run folder resumes where the last checkpoint stopped (raise
`optim.steps` to train longer). CUDA when present (with mixed precision), CPU otherwise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ml.data.pairs_dataset import PairsDataset
from ml.device import Runtime
from ml.losses.perceptual import PerceptualLoss
from ml.nets.generator import Generator, GeneratorConfig
from ml.nets.vgg import load_vgg16
from ml.train.loop import OptimConfig, RunConfig, Trainer, run_stage
from ml.train.sample_grid import save_grid
from rigs.spec import load_spec


@dataclass
class DataConfig:
    pairs: str = "data/pairs"
    holdout_every: int = 20
    workers: int = 2


@dataclass
class LossConfig:
    l1: float = 1.0
    perceptual: float = 1.0
    vgg_weights: str = "data/weights/vgg16_imagenet.pt"


@dataclass
class TrainGeneratorConfig:
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(dir="runs/generator"))


def fit_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, 3, S, S) images to the model's size (area filter) when they differ."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")


class GeneratorTrainer(Trainer):
    kind = "generator"

    def __init__(self, cfg: TrainGeneratorConfig, rt: Runtime) -> None:
        spec = load_spec()
        torch.manual_seed(cfg.run.seed)
        data = PairsDataset(cfg.data.pairs, "train", cfg.data.holdout_every)
        super().__init__(cfg, rt, spec, Generator(spec, cfg.model), data, cfg.data.workers)
        self.perc = (
            PerceptualLoss(load_vgg16(cfg.loss.vgg_weights)).to(rt.device)
            if cfg.loss.perceptual > 0
            else None
        )

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        target = fit_size(batch["image"].to(self.rt.device), cfg.model.image_size)
        with self.autocast():
            fake = self.net(batch["params"].to(self.rt.device))
        fake = fake.float()
        l1 = F.l1_loss(fake, target)
        total = cfg.loss.l1 * l1
        parts = {"l1": l1.item()}
        if self.perc is not None:
            perc = self.perc(fake, target)
            total = total + cfg.loss.perceptual * perc
            parts["perceptual"] = perc.item()
        parts["loss"] = total.item()
        return total, parts

    def samples(self) -> None:
        held = PairsDataset(self.cfg.data.pairs, "heldout", self.cfg.data.holdout_every)
        items = [held[i] for i in range(min(8, len(held)))]
        params = torch.stack([it["params"] for it in items]).to(self.rt.device)
        real = fit_size(torch.stack([it["image"] for it in items]), self.cfg.model.image_size)
        self.model.eval()
        with torch.no_grad():
            fake = self.model(params).float().cpu()
        self.train_mode()
        save_grid(self.run / "samples" / f"step_{self.step:07d}.png", real, fake)


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        "python -m ml.train.generator", __doc__ or "", TrainGeneratorConfig, GeneratorTrainer, argv
    )


if __name__ == "__main__":
    sys.exit(main())
