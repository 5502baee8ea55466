"""Train the generator G on rendered pairs: L1 + lambda * VGG16 perceptual loss.

    python -m ml.train_generator --config ml/configs/generator.toml [--set optim.steps=100]
    torchrun --nproc_per_node 2 -m ml.train_generator --config ml/configs/generator.toml

Checkpoints (`RUN/last.pt`) are written atomically every `run.ckpt_every` steps; a rerun
with the same run folder resumes where the last checkpoint stopped (raise
`optim.steps` to train longer). CUDA when present (with mixed precision), CPU otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from rigs.spec import load_spec

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import dump_toml, load_config
from .device import Runtime, init_runtime, shutdown
from .generator import Generator, GeneratorConfig
from .losses.perceptual import PerceptualLoss
from .pairs_dataset import PairsDataset
from .sample_grid import save_grid
from .vgg import load_vgg16

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    pairs: str = "data/pairs"
    holdout_every: int = 20
    workers: int = 2


@dataclass
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 16
    steps: int = 20000


@dataclass
class LossConfig:
    l1: float = 1.0
    perceptual: float = 1.0
    vgg_weights: str = "data/weights/vgg16_imagenet.pt"


@dataclass
class RunConfig:
    dir: str = "runs/generator"
    seed: int = 0
    ckpt_every: int = 500
    sample_every: int = 500
    log_every: int = 20
    amp: bool = True


@dataclass
class TrainGeneratorConfig:
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)


def _batches(
    n: int, cfg: TrainGeneratorConfig, rt: Runtime, start_step: int
) -> Iterator[list[int]]:
    """Index batches for this rank from `start_step` on: a seeded permutation per epoch,
    split across ranks, so a resumed run sees exactly the batches it would have seen."""
    bs = cfg.optim.batch_size
    per_epoch = max(1, (n // rt.world_size) // bs)
    step = start_step
    while True:
        epoch, k = divmod(step, per_epoch)
        g = torch.Generator().manual_seed(cfg.run.seed * 100003 + epoch)
        order = torch.randperm(n, generator=g).tolist()[rt.rank :: rt.world_size]
        for b in range(k, per_epoch):
            yield order[b * bs : (b + 1) * bs]
        step = (epoch + 1) * per_epoch


def _fit(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")


def _checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(model.parameters())))


class Trainer:
    """Owns model, optimiser, data and the run folder for one training job."""

    def __init__(self, cfg: TrainGeneratorConfig, rt: Runtime) -> None:
        self.cfg, self.rt, self.spec = cfg, rt, load_spec()
        self.run = Path(cfg.run.dir)
        if rt.main:
            self.run.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.run.seed)
        self.model = Generator(self.spec, cfg.model).to(rt.device)
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2)
        )
        self.step = 0
        self._resume()
        self.net = DDP(self.model) if rt.distributed else self.model
        self.perc = (
            PerceptualLoss(load_vgg16(cfg.loss.vgg_weights)).to(rt.device)
            if cfg.loss.perceptual > 0
            else None
        )
        self.data = PairsDataset(cfg.data.pairs, "train", cfg.data.holdout_every)
        self.amp = cfg.run.amp and rt.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def _resume(self) -> None:
        last = self.run / "last.pt"
        if not last.exists():
            return
        model, ckpt = load_checkpoint(last, self.spec, self.rt.device)
        if ckpt["model_config"] != dataclasses.asdict(self.cfg.model):
            raise CheckpointError(
                f"{last} has model config {ckpt['model_config']}, the config "
                f"asks for {dataclasses.asdict(self.cfg.model)}; use a new run.dir"
            )
        self.model.load_state_dict(model.state_dict())
        self.opt.load_state_dict(ckpt["optimizer"])
        self.step = int(ckpt["step"])
        if self.rt.main:
            log.info("resuming %s at step %d", last, self.step)

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        target = _fit(batch["image"].to(self.rt.device), self.cfg.model.image_size)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            fake = self.net(batch["params"].to(self.rt.device))
        fake = fake.float()
        l1 = F.l1_loss(fake, target)
        total = self.cfg.loss.l1 * l1
        parts = {"l1": l1.item()}
        if self.perc is not None:
            perc = self.perc(fake, target)
            total = total + self.cfg.loss.perceptual * perc
            parts["perceptual"] = perc.item()
        parts["loss"] = total.item()
        return total, parts

    def _save(self) -> None:
        if self.rt.main:
            save_checkpoint(
                self.run / "last.pt",
                "generator",
                self.model,
                self.cfg.model,
                self.step,
                dump_toml(self.cfg),
                self.spec,
                self.opt,
            )

    def _samples(self) -> None:
        if not self.rt.main:
            return
        held = PairsDataset(self.cfg.data.pairs, "heldout", self.cfg.data.holdout_every)
        items = [held[i] for i in range(min(8, len(held)))]
        params = torch.stack([it["params"] for it in items]).to(self.rt.device)
        real = _fit(torch.stack([it["image"] for it in items]), self.cfg.model.image_size)
        self.model.eval()
        with torch.no_grad():
            fake = self.model(params).float().cpu()
        self.model.train()
        save_grid(self.run / "samples" / f"step_{self.step:07d}.png", real, fake)

    def train(self) -> dict[str, float]:
        cfg, rt = self.cfg, self.rt
        loader = DataLoader(
            self.data,
            batch_sampler=_batches(len(self.data), cfg, rt, self.step),
            num_workers=cfg.data.workers,
        )
        bar = tqdm(total=cfg.optim.steps, initial=self.step, disable=not rt.main, unit="step")
        history: list[float] = []
        parts: dict[str, float] = {}
        start, seen = time.perf_counter(), 0
        self.model.train()
        for batch in loader:
            if self.step >= cfg.optim.steps:
                break
            loss, parts = self._loss(batch)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step += 1
            seen += len(batch["params"]) * rt.world_size
            history.append(parts["loss"])
            if self.step % cfg.run.log_every == 0 or self.step == cfg.optim.steps:
                rate = seen / (time.perf_counter() - start)
                bar.set_postfix(loss=f"{parts['loss']:.4f}", img_s=f"{rate:.1f}")
                self._log({"step": self.step, **parts, "images_per_s": rate})
            if self.step % cfg.run.ckpt_every == 0 or self.step == cfg.optim.steps:
                self._save()
            if self.step % cfg.run.sample_every == 0 or self.step == cfg.optim.steps:
                self._samples()
            bar.update(1)
        bar.close()
        return {
            "final_loss": parts.get("loss", float("nan")),
            "first_loss_mean": float(np.mean(history[:5])) if history else float("nan"),
            "last_loss_mean": float(np.mean(history[-5:])) if history else float("nan"),
        }

    def _log(self, row: dict) -> None:
        if self.rt.main:
            with open(self.run / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def finish(self, summary: dict[str, float]) -> None:
        """Write the summary; under DDP, every rank's weight checksum (they must agree)."""
        sums = [_checksum(self.model)]
        if self.rt.distributed:
            gathered: list[float] = [0.0] * self.rt.world_size
            dist.all_gather_object(gathered, sums[0])
            sums = gathered
        if self.rt.main:
            out = {**summary, "step": self.step, "rank_checksums": sums}
            (self.run / "summary.json").write_text(json.dumps(out, indent=2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.train_generator", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--config", type=Path, default=None, help="TOML config file")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(TrainGeneratorConfig, args.config, args.overrides)
    rt = init_runtime()
    try:
        trainer = Trainer(cfg, rt)
        if rt.main:
            (trainer.run / "config.toml").write_text(dump_toml(cfg))
            log.info(
                "device %s, %d ranks, %d training pairs",
                rt.device,
                rt.world_size,
                len(trainer.data),
            )
        trainer.finish(trainer.train())
    finally:
        shutdown(rt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
