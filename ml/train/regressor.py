"""Train the regressor R without AU labels (paper section 2.5): real aligned faces go
through the frozen parser F, R predicts parameters, the frozen generator G renders them,
and five losses compare and constrain the result. Only R (and the mouth discriminator of
the adversarial loss, in its own step) trains.

    python -m ml.train.regressor --config ml/configs/regressor.toml

`loss.supervised` > 0 adds direct supervision on rendered pairs (a warm-up option,
reported as an ablation, not the method). With `model.backbone = true`, R trains its own
copy of the parser, started from the frozen F (which still computes the losses).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ml.config import ConfigError
from ml.data.augment import AugmentConfig, appearance, flip_some, mirror_params
from ml.data.pairs_dataset import PairsDataset
from ml.data.real_faces import RealFaces
from ml.device import Runtime
from ml.errors import MLError
from ml.losses.adversarial import MouthDiscriminator, adversarial_loss, discriminator_loss
from ml.losses.content import content_loss
from ml.losses.identity import identity_loss
from ml.losses.loopback import loopback_loss, with_base
from ml.losses.parameter import ParameterLoss
from ml.losses.supervised import check_groups, supervised_loss
from ml.nets.regressor import Regressor, RegressorConfig
from ml.train.checkpoint import load_checkpoint
from ml.train.generator import fit_size
from ml.train.loop import OptimConfig, RunConfig, Trainer, index_batches, run_stage
from rigs.spec import RigSpec, load_spec


@dataclass
class RegressorDataConfig:
    real: str = "data/real_faces.npz"  # from `python -m ml.data.real_faces`
    pairs: str = "data/pairs"  # rendered pairs, used only with loss.supervised > 0
    augment_pairs: bool = True  # the parser's appearance augmentation on those pairs
    # share of the real frames flipped horizontally for the five losses (they need no
    # labels, so a mirrored face is just another face)
    flip_real: float = 0.0
    holdout_every: int = 10
    workers: int = 2


@dataclass
class FrozenConfig:
    generator: str = "runs/generator/last.pt"
    parser: str = "runs/parser/last.pt"
    identity: str = "data/weights/identity/faceapi_resnet.pt"  # "" disables the identity loss


@dataclass
class RegressorLossConfig:
    content: float = 1.0
    identity: float = 0.1  # w_id
    parameter: float = 0.1  # w_pr
    loopback: float = 0.1  # w_lp
    adversarial: float = 0.1  # w_adv
    alpha: float = 0.1  # parameter loss: identity term
    beta: float = 0.01  # parameter loss: AU term (small: expressions must stay free)
    lambda_le: float = 1.0  # loopback: base-identity cycle vs base-AU cycle
    supervised: float = 0.0  # warm-up ablation only
    # weights of the spec groups inside the supervised loss; empty: every parameter alike
    supervised_groups: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainRegressorConfig:
    model: RegressorConfig = field(default_factory=RegressorConfig)
    data: RegressorDataConfig = field(default_factory=RegressorDataConfig)
    frozen: FrozenConfig = field(default_factory=FrozenConfig)
    loss: RegressorLossConfig = field(default_factory=RegressorLossConfig)
    # for the supervised pairs: renders must stand in for real faces. A flipped pair gets
    # mirrored parameters (RigSpec.mirror): AU12_L and AU12_R swap, yaw and roll negate.
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(flip_p=0.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, beta1=0.9))
    run: RunConfig = field(default_factory=lambda: RunConfig(dir="runs/regressor"))


def _frozen(path: str, spec: RigSpec, device: torch.device, kind: str) -> torch.nn.Module:
    model, ckpt = load_checkpoint(path, spec, device)
    if ckpt["kind"] != kind:
        raise MLError(f"{path} holds a {ckpt['kind']}, frozen.{kind} needs a {kind}")
    return model.to(device).eval().requires_grad_(False)


class RegressorTrainer(Trainer):
    kind = "regressor"

    def __init__(self, cfg: TrainRegressorConfig, rt: Runtime) -> None:
        check_groups(cfg.loss.supervised_groups)
        spec = load_spec()
        torch.manual_seed(cfg.run.seed)
        data = RealFaces(cfg.data.real, "train", cfg.data.holdout_every)
        super().__init__(cfg, rt, spec, Regressor(spec, cfg.model), data, cfg.data.workers)
        dev = rt.device
        w = cfg.loss
        uses_g = any(x > 0 for x in (w.content, w.identity, w.loopback, w.adversarial))
        # without a loss that renders, G is not needed (e.g. the supervised warm-up)
        self.G = _frozen(cfg.frozen.generator, spec, dev, "generator") if uses_g else None
        self.F = _frozen(cfg.frozen.parser, spec, dev, "parser")
        self.own = self.model.backbone is not None  # R parses images with its own copy of F
        if self.own:
            self._start_backbone(cfg.frozen.parser)
        self.E = None
        if cfg.loss.identity > 0:
            from ml.nets.identity import load_faceapi_resnet

            self.E = load_faceapi_resnet(cfg.frozen.identity).to(dev)
        self.pr = ParameterLoss(spec, cfg.loss.alpha, cfg.loss.beta).to(dev)
        self.D = MouthDiscriminator().to(dev)
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=cfg.optim.lr, betas=(0.5, 0.999))
        if "discriminator" in self.resumed_extra:  # a resumed run goes on with its D
            self.D.load_state_dict(self.resumed_extra["discriminator"])
            self.d_opt.load_state_dict(self.resumed_extra["discriminator_optimizer"])
        self.pairs = None
        if cfg.loss.supervised > 0:  # opened here, so a bad dataset fails before step 1
            pairs = PairsDataset(cfg.data.pairs, "train", 20, crop_roll=cfg.model.roll_in_crop)
            self.pairs = iter(self._pair_batches(pairs))
        five = ("content", "identity", "parameter", "loopback", "adversarial")
        self.unsupervised = any(getattr(cfg.loss, k) > 0 for k in five)
        if not self.unsupervised and self.pairs is None:
            raise ConfigError("every loss weight is 0: nothing to train the regressor with")

    def _start_backbone(self, path: str) -> None:
        """A new run starts R's backbone from F's weights; a resumed run, or one started
        from another run's weights (run.init), keeps its own."""
        assert isinstance(self.model, Regressor) and self.model.backbone is not None
        backbone = self.model.backbone
        if backbone.cfg != self.F.cfg:
            raise ConfigError(
                f"model.backbone needs a parser with the default config; {path} has {self.F.cfg}"
            )
        if self.step == 0 and not self.run_cfg.init:
            backbone.load_state_dict(self.F.state_dict())

    def _regress(self, images: torch.Tensor, parsed: dict | None = None) -> dict:
        """R on images: through its own backbone, or on F's features (`parsed`, if
        already computed)."""
        if self.own:
            return self.net(images)
        return self.net(parsed if parsed is not None else self.F(images))

    def extra_state(self) -> dict:
        return {
            "discriminator": self.D.state_dict(),
            "discriminator_optimizer": self.d_opt.state_dict(),
        }

    def _pair_batches(self, pairs: PairsDataset) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, target parameters); with model.roll_in_crop the head_roll target is the
        roll left in the aligned crop."""
        roll = load_spec().param("head_roll").index
        for idx in index_batches(
            len(pairs), self.optim.batch_size, self.run_cfg.seed + 1, self.rt, 0
        ):
            items = [pairs[i] for i in idx]
            params = torch.stack([it["params"] for it in items])
            if pairs.crop_rolls is not None:
                params[:, roll] -= torch.stack([it["crop_roll"] for it in items])
            yield torch.stack([it["image"] for it in items]), params

    def _render(self, params: torch.Tensor, size: int) -> torch.Tensor:
        assert self.G is not None
        return fit_size(self.G(params), size)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.cfg.loss
        parts = self._unsupervised(batch) if self.unsupervised else {}
        logged: dict[str, float] = {}
        if self.pairs is not None:
            images, params = next(self.pairs)
            g = torch.Generator().manual_seed(self.run_cfg.seed * 7919 + self.step)
            if self.cfg.data.augment_pairs:
                images = appearance(images, self.cfg.augment, g)
            if self.cfg.augment.flip_p > 0:  # with or without the appearance augmentation
                images, params = mirror_params(
                    images, params, self.spec, self.cfg.augment.flip_p, g
                )
            out = self._regress(images.to(self.rt.device))
            assert isinstance(self.model, Regressor)
            parts["supervised"], logged["supervised_mae"] = supervised_loss(
                out, params.to(self.rt.device), self.model, self.cfg.loss.supervised_groups
            )
        total = sum(getattr(w, k) * v for k, v in parts.items())
        assert isinstance(total, torch.Tensor)
        logged.update({k: v.item() for k, v in parts.items()}, loss=total.item())
        return total, logged

    def _unsupervised(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The paper's five losses on a batch of real faces; a loss whose weight is 0 is
        not computed (the ablation switches)."""
        w, spec = self.cfg.loss, self.spec
        real = batch["image"]
        if self.cfg.data.flip_real > 0:
            g = torch.Generator().manual_seed(self.run_cfg.seed * 104729 + self.step)
            real, _ = flip_some(real, self.cfg.data.flip_real, g)
        real = real.to(self.rt.device)
        size = real.shape[-1]
        parsed = self.F(real)
        p = self._regress(real, parsed)["params"]
        parts: dict[str, torch.Tensor] = {}
        if w.content > 0:
            parts["content"] = content_loss(self.F(self._render(p, size))["T"], parsed["T"])
        emotionless = with_base(p, spec, "au")
        if w.identity > 0 or w.adversarial > 0:
            emo_img = self._render(emotionless, size)
        if w.identity > 0 and self.E is not None:
            parts["identity"] = identity_loss(self.E(emo_img), self.E(real))
        if w.parameter > 0:
            parts["parameter"] = self.pr(p)
        if w.loopback > 0:
            x_au, x_id = emotionless.detach(), with_base(p, spec, "identity").detach()
            cyc_au = self._regress(self._render(x_au, size))
            cyc_id = self._regress(self._render(x_id, size))
            parts["loopback"] = loopback_loss(
                (cyc_au["params"], cyc_au["brow_logits"]),
                x_au,
                (cyc_id["params"], cyc_id["brow_logits"]),
                x_id,
                spec,
                w.lambda_le,
            )
        if w.adversarial > 0:
            mouth_emo = self.F(emo_img)["T"]["mouth"]
            with torch.no_grad():
                base_img = self._render(with_base(emotionless, spec, "identity"), size)
                mouth_base = self.F(base_img)["T"]["mouth"]
            self._step_discriminator(mouth_base, mouth_emo)
            parts["adversarial"] = adversarial_loss(self.D, mouth_emo)
        return parts

    def _step_discriminator(self, mouth_base: torch.Tensor, mouth_emo: torch.Tensor) -> None:
        self.d_opt.zero_grad(set_to_none=True)
        discriminator_loss(self.D, mouth_base, mouth_emo).backward()
        self.d_opt.step()  # R's backward later adds into D's grads; the next step clears them


def main(argv: list[str] | None = None) -> int:
    return run_stage(
        "python -m ml.train.regressor", __doc__ or "", TrainRegressorConfig, RegressorTrainer, argv
    )


if __name__ == "__main__":
    sys.exit(main())
