"""The training loop shared by every stage: seeded resumable batches, Adam, atomic
checkpoints, progress, logs, mixed precision on CUDA and DDP through torchrun.

A stage subclasses `Trainer` and supplies the model, the dataset and `loss(batch)`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from au_retarget_addon.core.files import atomic_path
from ml.config import ConfigError, dump_toml
from ml.device import Runtime
from ml.errors import MLError
from ml.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rigs.spec import RigSpec

log = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    batch_size: int = 16
    steps: int = 20000
    # "constant", or "cosine": lr until step `decay_start`, then down to lr * lr_floor at
    # `steps`, by the step number alone, so a resumed run goes on exactly where it stopped
    schedule: str = "constant"
    lr_floor: float = 0.0
    decay_start: int = 0
    # BatchNorm layers normalise with, and keep, the running statistics they start with
    # (eval mode) while the rest trains: for fine-tuning on batches unlike the ones those
    # statistics came from (the regressor's five losses mix real frames and generator
    # renders into them, and the statistics drift away from the rendered pairs')
    freeze_bn_stats: bool = False


SCHEDULES = ("constant", "cosine")


def lr_at(optim: OptimConfig, step: int) -> float:
    """The learning rate of training step `step` (0-based) under `optim.schedule`."""
    if optim.schedule == "constant":
        return optim.lr
    span = max(optim.steps - optim.decay_start, 1)
    t = min(max(step - optim.decay_start, 0), span) / span
    return optim.lr * (optim.lr_floor + (1 - optim.lr_floor) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass
class RunConfig:
    dir: str = "runs/run"
    seed: int = 0
    ckpt_every: int = 500
    sample_every: int = 500
    log_every: int = 20
    amp: bool = True
    # a checkpoint of the same kind and model config whose weights start this run (at step
    # 0, with a new optimiser): fine-tuning another run's model; unused once the run resumes
    init: str = ""


def index_batches(
    n: int, batch: int, seed: int, rt: Runtime, start_step: int
) -> Iterator[list[int]]:
    """Index batches for this rank from `start_step` on: a seeded permutation per epoch,
    split across ranks, so a resumed run sees exactly the batches it would have seen."""
    per_epoch = max(1, (n // rt.world_size) // batch)
    step = start_step
    while True:
        epoch, k = divmod(step, per_epoch)
        g = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(n, generator=g).tolist()[rt.rank :: rt.world_size]
        for b in range(k, per_epoch):
            yield order[b * batch : (b + 1) * batch]
        step = (epoch + 1) * per_epoch


def checksum(model: torch.nn.Module) -> float:
    """Order-sensitive sum of all weights: equal on every DDP rank when in sync."""
    return float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(model.parameters())))


class Trainer:
    """Owns model, optimiser, data and the run folder for one training job."""

    kind = "model"

    def __init__(
        self,
        cfg: Any,
        rt: Runtime,
        spec: RigSpec,
        model: torch.nn.Module,
        data: Any,
        workers: int,
    ) -> None:
        self.cfg, self.rt, self.spec, self.data, self.workers = cfg, rt, spec, data, workers
        self.run_cfg: RunConfig = cfg.run
        self.optim: OptimConfig = cfg.optim
        if self.optim.schedule not in SCHEDULES:
            raise ConfigError(
                f"optim.schedule must be one of {', '.join(SCHEDULES)}, not {self.optim.schedule!r}"
            )
        if not 0.0 <= self.optim.lr_floor <= 1.0:
            raise ConfigError(f"optim.lr_floor must be in [0, 1], not {self.optim.lr_floor}")
        if not 0 <= self.optim.decay_start < max(self.optim.steps, 1):
            raise ConfigError(
                f"optim.decay_start must be in [0, optim.steps = {self.optim.steps}), "
                f"not {self.optim.decay_start}"
            )
        self.run = Path(self.run_cfg.dir)
        if rt.main:
            self.run.mkdir(parents=True, exist_ok=True)
        self.model = model.to(rt.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(
            params,
            lr=self.optim.lr,
            weight_decay=self.optim.weight_decay,
            betas=(self.optim.beta1, self.optim.beta2),
        )
        self.step = 0
        self.resumed_extra: dict = {}  # a stage's own state from the checkpoint (extra_state)
        # weights recovered from a bundle (ml/export/bundle_weights.py): BatchNorm layers are
        # identities, so every stage that trains them keeps their statistics frozen
        self.bn_folded = False
        self._resume()
        self.net = DDP(self.model) if rt.distributed else self.model
        self.amp = self.run_cfg.amp and rt.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    # stage hooks -------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def samples(self) -> None:
        """Write a picture of the current model (rank 0 only); optional."""

    def extra_state(self) -> dict:
        """State besides the model and its optimiser that a resume needs (e.g. a
        discriminator); saved in the checkpoint's "extra", back in `resumed_extra`."""
        return {}

    # machinery ---------------------------------------------------------------------
    def autocast(self) -> torch.autocast:
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.amp)

    def _resume(self) -> None:
        last = self.run / "last.pt"
        if not last.exists():
            if self.run_cfg.init:
                self._init_from(Path(self.run_cfg.init))
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
        self.resumed_extra = ckpt.get("extra") or {}
        self.bn_folded = bool(self.resumed_extra.get("bn_folded"))
        self._check_folded(last)
        if self.rt.main:
            log.info("resuming %s at step %d", last, self.step)
            self._cut_log()

    def _cut_log(self) -> None:
        """Drop the log rows written after the checkpoint's step: the resumed run writes
        those steps again (and a torn last line from the kill goes too)."""
        path = self.run / "log.jsonl"
        if not path.is_file():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict) or int(row.get("step", 0)) <= self.step:
                keep.append(line)
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in keep))

    def _init_from(self, path: Path) -> None:
        """Start from the weights of `path` (run.init)."""
        model, ckpt = load_checkpoint(path, self.spec, self.rt.device)
        if ckpt["kind"] != self.kind:
            raise CheckpointError(f"run.init: {path} is a {ckpt['kind']}, not a {self.kind}")
        if ckpt["model_config"] != dataclasses.asdict(self.cfg.model):
            raise CheckpointError(
                f"run.init: {path} has model config {ckpt['model_config']}, the config "
                f"asks for {dataclasses.asdict(self.cfg.model)}"
            )
        self.bn_folded = bool((ckpt.get("extra") or {}).get("bn_folded"))
        self._check_folded(path, "run.init: ")
        self.model.load_state_dict(model.state_dict())
        if self.rt.main:
            log.info("starting from the weights of %s (its step %d)", path, int(ckpt["step"]))

    def _check_folded(self, path: Path, what: str = "") -> None:
        if self.bn_folded and not self.optim.freeze_bn_stats:
            raise ConfigError(
                f"{what}{path} holds weights recovered from a bundle, whose BatchNorm layers "
                "are folded into their convolutions: train it with optim.freeze_bn_stats = true "
                "(ml/export/bundle_weights.py)"
            )

    def save(self) -> None:
        if self.rt.main:
            save_checkpoint(
                self.run / "last.pt",
                self.kind,
                self.model,
                self.cfg.model,
                self.step,
                dump_toml(self.cfg),
                self.spec,
                self.opt,
                {**self.extra_state(), **({"bn_folded": True} if self.bn_folded else {})},
            )

    def _log(self, row: dict) -> None:
        if self.rt.main:
            with open(self.run / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def train_mode(self) -> None:
        """The model in training mode; with `optim.freeze_bn_stats` its BatchNorm layers
        stay in eval mode."""
        self.model.train()
        if self.optim.freeze_bn_stats:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _due(self, every: int) -> bool:
        return self.step % every == 0 or self.step == self.optim.steps

    def train(self) -> dict[str, float]:
        rt, run = self.rt, self.run_cfg
        batches = index_batches(len(self.data), self.optim.batch_size, run.seed, rt, self.step)
        loader = DataLoader(self.data, batch_sampler=batches, num_workers=self.workers)
        bar = tqdm(total=self.optim.steps, initial=self.step, disable=not rt.main, unit="step")
        history: list[float] = []
        parts: dict[str, float] = {}
        start, seen = time.perf_counter(), 0
        self.train_mode()
        for batch in loader:
            if self.step >= self.optim.steps:
                break
            lr = lr_at(self.optim, self.step)
            for group in self.opt.param_groups:
                group["lr"] = lr
            loss, parts = self.loss(batch)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step += 1
            seen += len(next(iter(batch.values()))) * rt.world_size
            history.append(parts["loss"])
            if self._due(run.log_every):
                rate = seen / (time.perf_counter() - start)
                bar.set_postfix(loss=f"{parts['loss']:.4f}", img_s=f"{rate:.1f}")
                self._log({"step": self.step, **parts, "lr": lr, "images_per_s": rate})
            if self._due(run.ckpt_every):
                self.save()
            if self._due(run.sample_every) and rt.main:
                self.samples()
            bar.update(1)
        bar.close()
        return {
            "final_loss": parts.get("loss", float("nan")),
            "first_loss_mean": float(np.mean(history[:5])) if history else float("nan"),
            "last_loss_mean": float(np.mean(history[-5:])) if history else float("nan"),
        }

    def finish(self, summary: dict[str, float]) -> None:
        """Write the summary; under DDP, every rank's weight checksum (they must agree)."""
        sums = [checksum(self.model)]
        if self.rt.distributed:
            gathered: list[float] = [0.0] * self.rt.world_size
            dist.all_gather_object(gathered, sums[0])
            sums = gathered
        if self.rt.main:
            out = {**summary, "step": self.step, "rank_checksums": sums}
            (self.run / "summary.json").write_text(json.dumps(out, indent=2))
            (self.run / "config.toml").write_text(dump_toml(self.cfg))
        if self.rt.distributed:
            # every rank reaches teardown before any closes its connections: a gloo rank
            # that tears down while its peer is still busy can abort the peer (seen once in
            # CI: "terminate called without an active exception" after the last step).
            # Only here, on success: a failed rank must not wait for a peer stuck elsewhere.
            dist.barrier()


def run_stage(
    prog: str, doc: str, cfg_cls: type, make_trainer: Any, argv: list[str] | None = None
) -> int:
    """Command-line entry of a training stage: --config FILE, --set key=value overrides."""
    import argparse
    import sys

    from ml.config import load_config
    from ml.device import init_runtime, shutdown

    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=None, help="TOML config file")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg: Any = load_config(cfg_cls, args.config, args.overrides)
    except MLError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    rt = init_runtime()
    try:
        trainer = make_trainer(cfg, rt)
        if rt.main:
            (trainer.run / "config.toml").write_text(dump_toml(cfg))
            log.info(
                "device %s, %d ranks, %d training items",
                rt.device,
                rt.world_size,
                len(trainer.data),
            )
        trainer.finish(trainer.train())
    except MLError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown(rt)
    return 0
