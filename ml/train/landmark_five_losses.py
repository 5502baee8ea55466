"""The five losses on real frames (paper section 2.5) for R on the landmark network's F.

R (ml/nets/landmark_regressor.py, from the supervised warm-up) goes on training on F's cached
features of the real-face set's training people, with the generator as F sees it
(ml/nets/feature_generator.py) in place of F after G:

- content: F's features of the real frame against the generator's features of R's
  parameters of it, L1 in the features' standard units, summed over the five components
  (eyes, brows, nose, mouth, face: each its landmarks and its part features);
- identity: a person's identity parameters are one face's: their spread over the person's
  frames in the batch (the video says which frames are one person; no label says who);
- parameter: predictions near the rig's reference face (ml/losses/parameter.py);
- loopback: the generator's features of R's parameters with the AUs neutral, and with the
  base identity, read back by R as those parameters (ml/losses/loopback.py);
- adversarial: a discriminator tells the mouth features of the emotionless face (R's
  identity and pose, AUs neutral) from the base face's at the same pose; R learns to fool
  it, so identity cannot carry mouth expression (ml/losses/adversarial.py).

Beside them, `--supervised` keeps the warm-up's loss on the rendered pairs and `--mirror`
asks R to read each real face's mirror image as the face mirrored (ml/losses/mirror.py). No
AU labels of anyone are used, and only the training people of the real-face set (the held-out people
serve the evaluation on real video alone). Frames whose F presence is below 0.5 (profiles,
no face) are left out.

    python -m ml.train.landmark_five_losses --regressor runs/recipe/landmark_regressor/last.pt \
        --generator runs/recipe/feature_generator/last.pt --pairs data/recipe/pairs \
        --run runs/recipe/five_losses

Writes `<run>/last.pt` (a landmark_regressor checkpoint, exported as the warm-up's is),
`<run>/log.jsonl` and `<run>/summary.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.cache import cache_dir
from ml.data.real_face_set import provenance
from ml.data.real_media import SET_FILE, load_set
from ml.errors import MLError, exit_on_error
from ml.losses.adversarial import adversarial_loss, discriminator_loss
from ml.losses.content import content_loss
from ml.losses.identity import identity_spread
from ml.losses.loopback import loopback_loss, with_base
from ml.losses.mirror import MirrorLoss
from ml.losses.parameter import ParameterLoss
from ml.nets.feature_generator import OUTPUTS, FeatureGenerator
from ml.nets.landmark_features import LandmarkF, part_indices
from ml.nets.landmark_regressor import LandmarkRegressor
from ml.train.checkpoint import load_checkpoint, save_checkpoint
from ml.train.landmark_regressor import loss_weights, pair_features, targets
from ml.train.real_features import real_features
from rigs.spec import RigSpec, load_spec

log = logging.getLogger(__name__)

# the paper's five components, from F's seven parts
COMPONENTS = {
    "eyes": ("eye_left", "eye_right"),
    "brows": ("brow_left", "brow_right"),
    "nose": ("nose",),
    "mouth": ("mouth",),
    "face": ("face",),
}
MIN_PRESENCE = 0.5
LEAK = 0.1
# loss weights: the paper's (w_id = w_pr = w_lp = w_adv = 0.1, lambda_le = 1), the parameter
# loss's alpha and beta as in ml/configs/regressor.toml, and the warm-up's loss on renders
WEIGHTS = {
    "content": 1.0, "identity": 0.1, "parameter": 0.1, "loopback": 0.1, "adversarial": 0.1,
    "supervised": 1.0, "mirror": 0.0, "alpha": 0.1, "beta": 0.01, "lambda_le": 1.0,
}  # fmt: skip


class FiveLossError(MLError, RuntimeError):
    """The five-loss stage cannot start (names the checkpoint, setting or data)."""


def component_columns(
    inputs: tuple[str, ...], dims: dict[str, int], points: int
) -> dict[str, torch.Tensor]:
    """Columns of R's joined input vector that belong to each component: its landmarks'
    x, y, depth in `aligned` and its rows of `parts` (K parts x C channels, flattened)."""
    if tuple(inputs) != OUTPUTS:
        raise FiveLossError(f"R reads {list(inputs)}; the five losses need R on {list(OUTPUTS)}")
    idx, names = part_indices(), list(part_indices())
    start_parts = dims["aligned"]
    channels = dims["parts"] // len(names)
    cols = {}
    for comp, parts in COMPONENTS.items():
        pts = sorted({i for p in parts for i in idx[p] if i < points})
        lm = [3 * i + c for i in pts for c in range(3)]
        pf = [start_parts + names.index(p) * channels + c for p in parts for c in range(channels)]
        cols[comp] = torch.tensor(lm + pf)
    return cols


class VectorDiscriminator(nn.Module):
    """A component's features (B, D) -> one logit: base face (1) or emotionless (0)."""

    def __init__(self, dim: int, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def real_set(
    f: LandmarkF, split: str, size: int, clips: list[str] | None = None,
    set_file: Path = SET_FILE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:  # fmt: skip
    """R's input vectors of the split's real crops (only `clips`, if given) that F reads as
    a face (presence >= 0.5), the same of their mirror images row for row, a person index
    per row, the people's names and the crops' names ('clip#frame@person', for the model
    card's sources)."""
    if split != "train":
        raise FiveLossError(f"the five losses train on the train split's people, not {split!r}")
    feats = real_features(
        f, load_set(set_file), cache_dir("real_media"), cache_dir("real_faces"), split, size,
        clips,
    )  # fmt: skip
    if not feats:
        raise FiveLossError(f"the real-face set's {split} split has no crops in {clips}")
    people = sorted({p for _, p in feats})
    xs, flips, who, names = [], [], [], []
    for (clip, person), z in feats.items():
        keep = z["presence"].reshape(-1) >= MIN_PRESENCE
        names += [f"{clip}#{int(f)}@{person}" for f in z["frames"][keep]]
        xs.append(np.concatenate([z[k][keep] for k in OUTPUTS], axis=1))
        flips.append(np.concatenate([z["flipped_" + k][keep] for k in OUTPUTS], axis=1))
        who.append(np.full(int(keep.sum()), people.index(person)))
    x, x_flip = np.concatenate(xs), np.concatenate(flips)
    if not len(x):
        raise FiveLossError(
            f"F reads no face (presence >= {MIN_PRESENCE}) in the crops of {sorted(feats)}"
        )
    return x.astype(np.float32), x_flip.astype(np.float32), np.concatenate(who), people, names


def identity_logits(spec: RigSpec, logits: torch.Tensor) -> torch.Tensor:
    sl = spec.layout()["identity"]
    return logits[:, sl]


def base_face(params: torch.Tensor, spec: RigSpec) -> torch.Tensor:
    """The base identity with neutral AUs at the pose and gaze of `params`."""
    return with_base(with_base(params, spec, "au"), spec, "identity")


def train(
    spec: RigSpec, r: LandmarkRegressor, g: FeatureGenerator, real_x: np.ndarray,
    real_flip: np.ndarray, real_who: np.ndarray, pair_x: np.ndarray, pair_y: np.ndarray,
    w: dict[str, float], steps: int, lr: float, batch: int, seed: int, log_path: Path, points: int,
    mirror_groups: tuple[str, ...] | None = None,
) -> dict[str, float]:  # fmt: skip
    """R's heads by the five losses (module docstring); returns the last logged losses."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    g.eval().requires_grad_(False)
    cols = component_columns(r.cfg.inputs, dict(r.cfg.input_dims), points)
    mouth = cols["mouth"]
    d = VectorDiscriminator(len(mouth))
    opt = torch.optim.Adam(r.parameters(), lr=lr)
    opt_d = torch.optim.Adam(d.parameters(), lr=lr)
    prior = ParameterLoss(spec, w["alpha"], w["beta"])
    sup_w = loss_weights(spec)
    span = r.span.clamp_min(1e-6)
    xr, xr_flip = torch.from_numpy(real_x), torch.from_numpy(real_flip)
    who = torch.from_numpy(real_who)
    mirror = MirrorLoss(spec, mirror_groups)
    xs, ys = torch.from_numpy(pair_x), torch.from_numpy(pair_y)
    std = lambda v: (v - r.feat_mean) / r.feat_std  # noqa: E731  F's standard units
    last: dict[str, float] = {}
    r.train()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as logf:
        for step in range(1, steps + 1):
            i = torch.randint(0, len(xr), (batch,), generator=gen)
            x = torch.cat([xr[i], xr_flip[i]])  # each face and its mirror image
            faces = torch.cat([2 * who[i], 2 * who[i] + 1])  # a mirror image is another face
            out = r(x)
            # the generator sees the clamped parameters plus a tenth of what lies beyond the
            # range: an AU held at 0 still learns which way the real face pulls it
            params = out["params"] + LEAK * span * (out["logits"] - out["logits"].clamp(0, 1))
            on = lambda k: w[k] > 0  # noqa: E731  a switched-off loss is not computed
            losses: dict[str, torch.Tensor] = {}
            if on("content"):
                t_real = {k: std(x)[:, c] for k, c in cols.items()}
                t_fake = {k: std(g.join(g(params)))[:, c] for k, c in cols.items()}
                losses["content"] = content_loss(t_fake, t_real)
            if on("identity"):
                ids = identity_logits(spec, out["logits"])
                losses["identity"] = identity_spread(ids, faces)
            if on("mirror"):
                losses["mirror"] = mirror(out["params"][:batch], out["params"][batch:])
            if on("parameter"):
                losses["parameter"] = prior(params)
            if on("loopback"):
                y_au = with_base(params.detach(), spec, "au")
                y_id = with_base(params.detach(), spec, "identity")
                c_au, c_id = r(g.join(g(y_au))), r(g.join(g(y_id)))
                losses["loopback"] = loopback_loss(
                    (c_au["params"], c_au["brow_logits"]), y_au,
                    (c_id["params"], c_id["brow_logits"]), y_id, spec, w["lambda_le"],
                )  # fmt: skip
            if on("adversarial"):
                emotionless = std(g.join(g(with_base(params, spec, "au"))))[:, mouth]
                base = std(g.join(g(base_face(params.detach(), spec))))[:, mouth]
                losses["adversarial"] = adversarial_loss(d, emotionless)
            if on("supervised"):
                j = torch.randint(0, len(xs), (batch,), generator=gen)
                err = (r.lo + span * r(xs[j])["logits"] - ys[j]) / span
                losses["supervised"] = (err.pow(2) * sup_w).sum(1).mean() / sup_w.sum()
            if not losses:
                raise FiveLossError("every loss weight is 0: nothing to train")
            total = sum(w[k] * v for k, v in losses.items())
            opt.zero_grad()
            total.backward()  # type: ignore[union-attr]
            opt.step()
            loss_d = None
            if on("adversarial"):
                loss_d = discriminator_loss(d, base, emotionless)
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
            if step == 1 or step % 100 == 0 or step == steps:
                last = {k: round(float(v), 5) for k, v in losses.items()}
                if loss_d is not None:
                    last["discriminator"] = round(float(loss_d), 5)
                logf.write(json.dumps({"step": step, **last}) + "\n")
                log.info("step %d %s", step, last)
    r.eval()
    return last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.train.landmark_five_losses", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--regressor", type=Path, required=True, help="the warm-up's last.pt")
    ap.add_argument("--generator", type=Path, required=True, help="feature generator last.pt")
    ap.add_argument("--pairs", type=Path, required=True, help="the warm-up's rendered pairs")
    ap.add_argument("--run", type=Path, required=True, help="run folder")
    ap.add_argument("--clips", nargs="+", default=None,
                    help="only these clips of the training people")  # fmt: skip
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128, help="real faces per step (and their "
                    "mirror images), and as many rendered pairs")  # fmt: skip
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--mirror-groups",
        nargs="+",
        choices=("pose", "gaze", "au", "identity"),
        default=None,
        help="the groups the mirror loss compares (default: all)",
    )
    for k, v in WEIGHTS.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=float, default=v,
                        help=f"loss weight (default {v})")  # fmt: skip
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.steps < 1 or args.batch < 1 or not args.lr > 0:
        raise FiveLossError(f"--steps, --batch >= 1 and --lr > 0 ({args.steps}, {args.batch}, "
                            f"{args.lr})")  # fmt: skip
    spec = load_spec()
    r, ckpt = load_checkpoint(args.regressor, spec)
    g, _ = load_checkpoint(args.generator, spec)
    if not isinstance(r, LandmarkRegressor) or not isinstance(g, FeatureGenerator):
        raise FiveLossError(
            f"{args.regressor} must hold a landmark_regressor and {args.generator} a "
            "feature_generator checkpoint"
        )
    from ml.nets.face_landmark_net import load

    f = LandmarkF(load(r.cfg.landmark_model))
    t0 = time.perf_counter()
    real_x, real_flip, who, people, names = real_set(f, "train", r.cfg.image_size, args.clips)
    feats = pair_features(args.pairs, f)
    pair_x, pair_y = targets(spec, feats, tuple(r.cfg.inputs))
    t_feat = time.perf_counter() - t0
    w = {k: float(getattr(args, k)) for k in WEIGHTS}
    last = train(spec, r, g, real_x, real_flip, who, pair_x, pair_y, w, args.steps, args.lr,
                 args.batch, args.seed, args.run / "log.jsonl", f.net.points,
                 tuple(args.mirror_groups) if args.mirror_groups else None)  # fmt: skip
    t_train = time.perf_counter() - t0 - t_feat
    step = int(ckpt["step"]) + args.steps
    summary: dict[str, Any] = {
        "step": step, "features_s": round(t_feat, 1), "train_s": round(t_train, 1),
        "real_frames": len(real_x), "people": people, "weights": w, "last_losses": last,
        "real_faces_sources": provenance(names),
    }  # fmt: skip
    config = json.dumps({k: str(v) for k, v in vars(args).items()})
    save_checkpoint(args.run / "last.pt", "landmark_regressor", r, r.cfg, step, config, spec,
                    extra=summary)  # fmt: skip
    (args.run / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.run / 'last.pt'}: {len(real_x)} real frames of {', '.join(people)}, "
          f"{args.steps} steps in {t_train:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.train.landmark_five_losses", main))
