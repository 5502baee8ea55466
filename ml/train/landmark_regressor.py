"""Train R on the landmark network's F (the supervised warm-up of paper section 2.5 with a
real-face F): F's features of every rendered pair, and of its mirror image with mirrored
parameters, are computed once and cached outside the checkout; then only R's head trains.

    python -m ml.train.landmark_regressor --pairs data/pairs_192 --run runs/landmark
    python -m ml.export.bundle --regressor runs/landmark/last.pt --out runs/landmark/bundle

The pairs need their crop rolls first (`python ml/blender/crop_rolls.py -- --pairs DIR`): head
roll is learned relative to the aligned crop and the tracker adds the crop's angle back.
Writes `<run>/last.pt` (ml/train/checkpoint.py), `<run>/log.jsonl` and `<run>/summary.json`;
ml/export/bundle.py exports it as one ONNX bundle (F and R in one graph, checked against torch
by onnxruntime).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ml.cache import cache_dir
from ml.data.pairs_layout import list_pairs, read_crop_rolls, read_pair
from ml.errors import MLError, exit_on_error
from ml.nets.landmark_features import DEFAULT_INPUTS, INPUTS, LandmarkF
from ml.nets.landmark_regressor import (
    LandmarkRegressor,
    LandmarkRegressorConfig,
    LandmarkRegressorError,
)
from ml.train.checkpoint import save_checkpoint
from rigs.spec import RigSpec, load_spec

log = logging.getLogger(__name__)

GROUP_WEIGHTS = {"au": 4.0, "pose": 1.0, "gaze": 0.5, "identity": 0.25}
FEATURES_VERSION = "landmark-f-2"  # bump when F's outputs change: old caches are not reused


class LandmarkTrainError(MLError, RuntimeError):
    """The pairs lack what training needs (names the folder)."""


def _cache_key(pairs: Path, f: LandmarkF) -> str:
    h = hashlib.sha256((pairs / "dataset.json").read_bytes())
    h.update(f"{FEATURES_VERSION}:{f.net.model}:{len(list_pairs(pairs))}".encode())
    return h.hexdigest()[:16]


def feature_columns(f: LandmarkF, x: torch.Tensor, cols: dict[str, list[np.ndarray]]) -> None:
    """Append F's outputs (every one a regressor may read, flattened, and the presence) of
    images `x` (N, 3, S, S) in [0, 1] and of their mirror images (`flipped_<name>`) to `cols`."""
    for prefix, img in (("", x), ("flipped_", torch.flip(x, dims=[3]))):
        feats = f(img)
        for k in (*INPUTS, "presence"):
            cols.setdefault(prefix + k, []).append(feats[k].reshape(len(x), -1).numpy())


def pair_features(pairs: Path, f: LandmarkF, batch: int = 32) -> dict[str, np.ndarray]:
    """F's outputs (every one a regressor may read, flattened) of each pair's image and of
    its mirror image (`flipped_<name>`), the parameters and the crop rolls, cached under
    the pairs' config and F's version."""
    if not (pairs / "dataset.json").is_file():
        raise LandmarkTrainError(f"{pairs} is not a pairs dataset (no dataset.json)")
    out = cache_dir("features", f"{pairs.name}-{_cache_key(pairs, f)}.npz")
    if out.is_file():
        with np.load(out) as z:
            return {k: z[k] for k in z.files}
    rolls = read_crop_rolls(pairs)
    stems = list_pairs(pairs)
    cols: dict[str, list[np.ndarray]] = {}
    params = []
    f.eval()
    with torch.no_grad():
        for s in tqdm(range(0, len(stems), batch), desc=f"F on {pairs.name}", unit="batch"):
            items = [read_pair(p) for p in stems[s : s + batch]]
            x = torch.from_numpy(np.stack([it.image for it in items])).permute(0, 3, 1, 2)
            feature_columns(f, x.float() / 255.0, cols)
            params += [it.params for it in items]
    result = {k: np.concatenate(v) for k, v in cols.items()}
    result["params"] = np.stack(params).astype(np.float32)
    result["rolls"] = rolls.astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part.npz")
    np.savez(part, **result)
    part.replace(out)
    return result


def targets(
    spec: RigSpec, feats: dict[str, np.ndarray], inputs: tuple[str, ...] = DEFAULT_INPUTS
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) with the mirror images appended: F's outputs named by `inputs`
    joined as LandmarkF.join does, head roll relative to the crop, a flipped crop's
    parameters mirrored (its crop roll negated)."""
    roll = spec.names.index("head_roll")
    ok = np.isfinite(feats["rolls"])
    y = feats["params"][ok].copy()
    y[:, roll] -= feats["rolls"][ok]
    y_flip = spec.mirrored(y)
    x = np.concatenate([feats[k][ok] for k in inputs], axis=1)
    x_flip = np.concatenate([feats["flipped_" + k][ok] for k in inputs], axis=1)
    return np.concatenate([x, x_flip]), np.concatenate([y, y_flip]).astype(np.float32)


def loss_weights(spec: RigSpec) -> torch.Tensor:
    w = torch.zeros(spec.size)
    for group, weight in GROUP_WEIGHTS.items():
        for p in spec.group(group):
            w[p.index] = weight
    return w


def train(
    spec: RigSpec, x: np.ndarray, y: np.ndarray, cfg: LandmarkRegressorConfig, steps: int,
    lr: float, batch: int, seed: int, log_path: Path,
) -> LandmarkRegressor:  # fmt: skip
    """R's head on cached features: weighted squared error on range-normalised parameters
    (the mean, not the median, of sparse AUs), cross-entropy on the brow style; AdamW with
    a cosine decay."""
    torch.manual_seed(seed)
    model = LandmarkRegressor(spec, cfg)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.set_standardisation(xt)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    w = loss_weights(spec)
    span = model.span.clamp_min(1e-6)
    gen = torch.Generator().manual_seed(seed)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as logf:
        for step in range(1, steps + 1):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            idx = torch.randint(0, len(xt), (batch,), generator=gen)
            out = model(xt[idx])
            err = (model.lo + span * out["logits"] - yt[idx]) / span  # unclamped
            loss = (err.pow(2) * w).sum(1).mean() / w.sum()
            if model.brow:
                style = (yt[idx][:, model.brow[0]] - model.lo[model.brow[0]]).round().long()
                loss = loss + 0.1 * torch.nn.functional.cross_entropy(out["brow_logits"], style)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == 1 or step % 200 == 0 or step == steps:
                value = float(loss.detach())
                logf.write(json.dumps({"step": step, "loss": round(value, 5)}) + "\n")
                log.info("step %d loss %.4f", step, value)
    return model.eval()


def parse_group_inputs(items: list[str]) -> dict[str, list[str]]:
    """["pose=aligned", "au=aligned,parts", ...] -> {"pose": ["aligned"], ...}."""
    out: dict[str, list[str]] = {}
    for item in items:
        group, sep, names = item.partition("=")
        if not sep or not names or group in out:
            raise LandmarkTrainError(
                f"--group-inputs {item!r}: write GROUP=INPUT[,INPUT...], each group once"
            )
        out[group] = names.split(",")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.train.landmark_regressor", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--pairs", type=Path, required=True, help="rendered pairs (with crop rolls)")
    ap.add_argument("--run", type=Path, required=True, help="run folder")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=2, help="hidden layers (0: a linear map)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--landmark-model", choices=("468", "478"), default="468")
    ap.add_argument(
        "--inputs", nargs="+", choices=INPUTS, default=list(DEFAULT_INPUTS),
        help="which of F's outputs R reads (ml/nets/landmark_features.py)",
    )  # fmt: skip
    ap.add_argument(
        "--group-inputs", nargs="+", default=[], metavar="GROUP=INPUT,...",
        help="one sub-network per parameter group, each reading these of --inputs, e.g. "
        "pose=aligned gaze=aligned au=aligned,parts identity=aligned (all four groups)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    group_inputs = parse_group_inputs(args.group_inputs)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.steps < 1 or args.batch < 1 or args.depth < 0:
        raise LandmarkTrainError(
            f"--steps and --batch must be >= 1, --depth >= 0 ({args.steps}, {args.batch}, "
            f"{args.depth})"
        )
    from ml.nets.face_landmark_net import load

    spec = load_spec()
    f = LandmarkF(load(args.landmark_model))
    t0 = time.perf_counter()
    feats = pair_features(args.pairs, f)
    x, y = targets(spec, feats, tuple(args.inputs))
    t_feat = time.perf_counter() - t0
    size = int(json.loads((args.pairs / "dataset.json").read_text()).get("size", 192))
    cfg = LandmarkRegressorConfig(
        in_dim=x.shape[1], inputs=tuple(args.inputs), width=args.width, depth=args.depth,
        landmark_model=args.landmark_model, image_size=size, group_inputs=group_inputs,
        input_dims={k: int(feats[k].shape[1]) for k in args.inputs},
    )  # fmt: skip
    try:
        LandmarkRegressor(spec, cfg)
    except LandmarkRegressorError as exc:
        raise LandmarkTrainError(f"--group-inputs: {exc}") from exc
    model = train(spec, x, y, cfg, args.steps, args.lr, args.batch, args.seed,
                  args.run / "log.jsonl")  # fmt: skip
    t_train = time.perf_counter() - t0 - t_feat
    config = json.dumps({k: str(v) for k, v in vars(args).items()})
    times: dict[str, Any] = {"features_s": round(t_feat, 1), "train_s": round(t_train, 1),
                             "samples": len(x)}  # fmt: skip
    save_checkpoint(args.run / "last.pt", "landmark_regressor", model, cfg, args.steps, config,
                    spec, extra=times)  # fmt: skip
    # what a model card reads of a run (ml/export/model_card.py)
    (args.run / "summary.json").write_text(json.dumps({"step": args.steps, **times}) + "\n")
    print(f"wrote {args.run / 'last.pt'}: {len(x)} samples, features {t_feat:.0f} s, "
          f"training {t_train:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.train.landmark_regressor", main))
