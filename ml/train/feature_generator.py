"""Train the generator as F sees it (ml/nets/feature_generator.py) on F's cached features of
the rendered pairs, and measure how far it is from F's reading of held-out renders.

    python -m ml.train.feature_generator --pairs data/recipe/pairs \
        --eval-pairs data/recipe/pairs_eval --run runs/recipe/feature_generator

Writes `<run>/last.pt` and `<run>/summary.json`: per face part, the mean 2-D distance in
inter-ocular units between the generator's landmarks and F's landmarks of the held-out
renders of the same parameters, beside the same for the mean face (what a generator that
ignores its input would score), and the part features' R^2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.errors import MLError, exit_on_error
from ml.nets.feature_generator import OUTPUTS, FeatureGenerator, FeatureGeneratorConfig
from ml.nets.landmark_features import LandmarkF, part_indices
from ml.train.checkpoint import save_checkpoint
from ml.train.landmark_regressor import pair_features, targets
from rigs.spec import RigSpec, load_spec

log = logging.getLogger(__name__)


class FeatureGeneratorError(MLError, RuntimeError):
    """Training the feature generator cannot start (names the setting or folder)."""


def train(
    spec: RigSpec, y: np.ndarray, x: np.ndarray, cfg: FeatureGeneratorConfig, steps: int,
    lr: float, batch: int, seed: int,
) -> FeatureGenerator:  # fmt: skip
    """Squared error in standard units of F's outputs x (N, D) from parameters y (N, P);
    AdamW with a cosine decay."""
    torch.manual_seed(seed)
    g = FeatureGenerator(spec, cfg)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g.set_standardisation(xt)
    zt = (xt - g.out_mean) / g.out_std
    opt = torch.optim.AdamW(g.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, len(xt), (batch,), generator=gen)
        loss = (g.standardised(yt[idx]) - zt[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 1 or step % 500 == 0 or step == steps:
            log.info("step %d loss %.4f", step, float(loss))
    return g.eval()


def part_errors(pred: np.ndarray, true: np.ndarray, points: int) -> dict[str, float]:
    """Mean 2-D landmark distance per part, inter-ocular units, between two `aligned`
    arrays (N, points * 3 + 2)."""
    a = pred[:, : points * 3].reshape(len(pred), points, 3)[..., :2]
    b = true[:, : points * 3].reshape(len(true), points, 3)[..., :2]
    d = np.linalg.norm(a - b, axis=2)  # (N, points)
    out = {part: float(d[:, [i for i in idx if i < points]].mean())
           for part, idx in part_indices().items()}  # fmt: skip
    out["all"] = float(d.mean())
    return {k: round(v, 4) for k, v in out.items()}


def measure(
    g: FeatureGenerator, spec: RigSpec, feats: dict[str, np.ndarray], mean: np.ndarray, points: int
) -> dict[str, Any]:
    """The generator against F's reading of renders `feats` (the held-out pairs)."""
    x, y = targets(spec, feats, OUTPUTS)
    with torch.no_grad():
        pred = g.join(g(torch.from_numpy(y))).numpy()
    d = g.cfg.dims["aligned"]
    parts_true, parts_pred = x[:, d:], pred[:, d:]
    r2 = (
        1.0
        - ((parts_pred - parts_true) ** 2).sum() / ((parts_true - parts_true.mean(0)) ** 2).sum()
    )
    return {
        "pairs": len(x),
        "landmark_error_iod": part_errors(pred[:, :d], x[:, :d], points),
        "mean_face_error_iod": part_errors(
            np.broadcast_to(mean[:d], x[:, :d].shape), x[:, :d], points
        ),  # fmt: skip
        "parts_r2": round(float(r2), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.train.feature_generator", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--pairs", type=Path, required=True, help="rendered pairs (with crop rolls)")
    ap.add_argument("--eval-pairs", type=Path, required=True, help="held-out rendered pairs")
    ap.add_argument("--run", type=Path, required=True, help="run folder")
    ap.add_argument("--landmark-model", choices=("468", "478"), default="478")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.steps < 1 or args.batch < 1 or args.depth < 0 or args.width < 1:
        raise FeatureGeneratorError(
            f"--steps, --batch and --width must be >= 1, --depth >= 0 ({args.steps}, "
            f"{args.batch}, {args.width}, {args.depth})"
        )
    from ml.nets.face_landmark_net import load

    spec = load_spec()
    f = LandmarkF(load(args.landmark_model))
    t0 = time.perf_counter()
    feats = pair_features(args.pairs, f)
    held = pair_features(args.eval_pairs, f)
    x, y = targets(spec, feats, OUTPUTS)
    cfg = FeatureGeneratorConfig(
        dims={k: int(feats[k].shape[1]) for k in OUTPUTS}, width=args.width, depth=args.depth
    )
    t_feat = time.perf_counter() - t0
    g = train(spec, y, x, cfg, args.steps, args.lr, args.batch, args.seed)
    t_train = time.perf_counter() - t0 - t_feat
    result = measure(g, spec, held, x.mean(0), f.net.points)
    summary = {"step": args.steps, "features_s": round(t_feat, 1), "train_s": round(t_train, 1),
               "samples": len(x), "held_out": result}  # fmt: skip
    config = json.dumps({k: str(v) for k, v in vars(args).items()})
    save_checkpoint(args.run / "last.pt", "feature_generator", g, cfg, args.steps, config, spec,
                    extra=summary)  # fmt: skip
    (args.run / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    err, base = result["landmark_error_iod"], result["mean_face_error_iod"]
    print(f"wrote {args.run / 'last.pt'}: {len(x)} samples, training {t_train:.0f} s")
    print("held-out renders, landmark error (inter-ocular units), generator / mean face:")
    for part in err:
        print(f"  {part:12s} {err[part]:.3f} / {base[part]:.3f}")
    print(f"  part features R^2 {result['parts_r2']}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.train.feature_generator", main))
