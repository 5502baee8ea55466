"""Evaluate the regressor in the layout of the paper's Table 1: ICC(3,1) and MAE per FACS AU
(intensity 0 to 5, left and right averaged) and their average, plus head-pose and gaze
error in degrees, on held-out rendered pairs (render them with --randomize and a seed
never used for training, so identities are unseen).

    python -m ml.eval.regressor --regressor runs/regressor/last.pt \
        --parser runs/parser/last.pt --pairs data/pairs_eval

    python -m ml.eval.regressor --bundle runs/recipe/bundle_int8 --pairs data/pairs_eval

Writes `eval.json` and `eval.md` beside the regressor checkpoint; with `--bundle` (the ONNX
graph that ships, e.g. quantised) it evaluates through onnxruntime and writes the
evaluation into the bundle's model card. `--bundle B --mirror` also prints the table on
the same pairs flipped, with mirrored parameters, and how differently the model reads a
face and its mirror image (a model that reads both sides alike scores 0 there).

On DISFA or BP4D, `--published FILE` prints published figures beside ours, in rows marked
with their source. FILE is TOML: `source = "..."`, then per dataset the published ICC and
MAE per AU (an AU left out prints as "-"):

    source = "Song et al., ACM MM 2020, Table 1"
    [disfa.icc]
    AU1 = 0.00
    [disfa.mae]
    AU1 = 0.00
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ml.data.au_datasets import BP4D_AUS, DISFA_AUS, LOADERS, Sample
from ml.data.pairs_dataset import PairsDataset
from ml.device import pick_device
from ml.errors import MLError, exit_on_error
from ml.eval.metrics import au_table
from ml.train.checkpoint import load_checkpoint
from ml.train.generator import fit_size
from rigs.spec import FACS_SCALE, load_spec


class EvalError(MLError, RuntimeError):
    """A checkpoint or bundle cannot be evaluated (names the file)."""


@torch.no_grad()
def predict(
    parser: torch.nn.Module,
    regressor: torch.nn.Module,
    data: PairsDataset,
    size: int,
    device: torch.device,
    batch: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) parameter vectors for every pair. A regressor with roll_in_crop
    gets each pair's crop roll added to its head_roll, as the tracker adds its own (the
    data must then carry crop rolls)."""
    own = getattr(regressor, "backbone", None) is not None  # R parses images itself
    in_crop = bool(getattr(getattr(regressor, "cfg", None), "roll_in_crop", False))
    roll = load_spec().param("head_roll")
    true, pred = [], []
    for s in range(0, len(data), batch):
        items = [data[i] for i in range(s, min(s + batch, len(data)))]
        images = fit_size(torch.stack([it["image"] for it in items]), size).to(device)
        pred.append(regressor(images if own else parser(images))["params"].cpu().numpy())
        if in_crop:  # as ModelBundle.run adds it, kept in the rig's range
            rolls = np.array([it["crop_roll"] for it in items])
            pred[-1][:, roll.index] = np.clip(pred[-1][:, roll.index] + rolls, roll.min, roll.max)
        true.append(torch.stack([it["params"] for it in items]).numpy())
    return np.concatenate(true), np.concatenate(pred)


def predict_bundle(
    bundle: Path, data: PairsDataset, batch: int = 64, mirror: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) parameter vectors for every pair, through a bundle's ONNX graph
    (crops resized to its input size as uint8, as the tracker feeds it). With `mirror`,
    every crop is flipped horizontally and its true parameters mirrored (RigSpec.mirrored;
    the crop roll changes sign), so a model that reads both sides alike scores the same."""
    from au_retarget_addon.core.bundle import ModelBundle

    b = ModelBundle(bundle, load_spec().hash(), device="cpu")
    true, pred = [], []
    for s in range(0, len(data), batch):
        items = [data[i] for i in range(s, min(s + batch, len(data)))]
        images = fit_size(torch.stack([it["image"] for it in items]), b.input.size)
        crops = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        rolls = np.array([it["crop_roll"] for it in items]) if b.roll_in_crop else None
        params = torch.stack([it["params"] for it in items]).numpy()
        if mirror:
            crops = np.ascontiguousarray(crops[:, :, ::-1])
            rolls = None if rolls is None else -rolls
            params = load_spec().mirrored(params)
        pred.append(b.run(crops, crop_rolls=rolls))
        true.append(params)
    return np.concatenate(true), np.concatenate(pred)


def mirror_consistency(pred: np.ndarray, pred_mirrored: np.ndarray) -> dict:
    """How differently a model reads a face and its mirror image, given its predictions
    on crops (`pred`) and on the same crops flipped (`pred_mirrored`): mean absolute
    difference between the one and the other mirrored back, for the AU intensities (FACS
    0..5, both sides' parameters) and the sideways angles (degrees)."""
    spec = load_spec()
    back = spec.mirrored(pred_mirrored)
    aus = [p.index for p in spec.group("au") if p.facs is not None]
    out = {"au_facs": float(np.abs(pred[:, aus] - back[:, aus]).mean() * FACS_SCALE)}
    for name in ("head_yaw", "head_roll", "gaze_yaw"):
        i = spec.param(name).index
        out[f"{name}_deg"] = float(np.abs(pred[:, i] - back[:, i]).mean())
    return out


def predict_dataset(
    bundle: Path, samples: Iterator[Sample], aus: tuple[str, ...], batch: int = 64
) -> tuple[np.ndarray, np.ndarray, int]:
    """FACS intensities (true, predicted), (N, len(aus)), on an AU dataset's frames: each
    frame is detected and aligned as the tracker does (largest face); frames without a face
    are skipped and counted."""
    from au_retarget_addon.core.align import align_face, crop_roll
    from au_retarget_addon.core.bundle import ModelBundle
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector

    spec = load_spec()
    b = ModelBundle(bundle, spec.hash(), device="cpu")
    detector = FaceDetector(DEFAULT_MODEL_DIR)
    names = list(spec.facs_groups())
    missing = [a for a in aus if a not in names]
    if missing:
        raise EvalError(f"the rig has no parameter for {missing}")
    cols = [names.index(a) for a in aus]
    true: list[list[float]] = []
    crops: list[np.ndarray] = []
    rolls: list[float] = []
    pred: list[np.ndarray] = []
    skipped = 0

    def flush() -> None:
        if crops:
            out = b.run(np.stack(crops), crop_rolls=np.array(rolls))
            pred.append(spec.facs_intensity(out)[1][:, cols])
            crops.clear()
            rolls.clear()

    for sample in samples:
        dets = detector.detect(sample.image)
        if not dets:
            skipped += 1
            continue
        face = max(dets, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        crop, m = align_face(sample.image, face.points, b.input.size)
        crops.append(crop)
        rolls.append(crop_roll(m))
        true.append([sample.intensity[a] for a in aus])
        if len(crops) >= batch:
            flush()
    flush()
    if not true:
        raise EvalError(f"no face found in any frame ({skipped} frames)")
    return np.array(true, np.float64), np.concatenate(pred), skipped


def evaluate(true: np.ndarray, pred: np.ndarray) -> dict:
    spec = load_spec()
    names, t_int = spec.facs_intensity(true)
    _, p_int = spec.facs_intensity(np.clip(pred, spec.mins(), spec.maxs()))
    table = au_table(t_int, p_int, names)
    lay = spec.layout()
    pose = np.abs(pred[:, lay["pose"]] - true[:, lay["pose"]]).mean(axis=0)
    gaze = np.abs(pred[:, lay["gaze"]] - true[:, lay["gaze"]]).mean(axis=0)
    return {
        "aus": table,
        "pose_deg": dict(zip(("yaw", "pitch", "roll"), pose.tolist(), strict=True)),
        "gaze_deg": dict(zip(("yaw", "pitch"), gaze.tolist(), strict=True)),
        "pairs": len(true),
    }


def load_published(path: Path, dataset: str, aus: tuple[str, ...]) -> dict:
    """Published figures for one dataset: {"source", "icc": {AU: v}, "mae": {AU: v}}."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EvalError(f"published figures {path} cannot be read: {exc}") from exc
    table = doc.get(dataset)
    if not isinstance(doc.get("source"), str) or not isinstance(table, dict):
        raise EvalError(f"published figures {path} need `source` and a [{dataset}] table")
    out: dict = {"source": doc["source"]}
    for metric in ("icc", "mae"):
        figures = table.get(metric, {})
        unknown = sorted(set(figures) - {*aus, "average"})
        if unknown:
            raise EvalError(f"published figures {path}: [{dataset}.{metric}] names {unknown}, "
                            f"not among this dataset's AUs {list(aus)}")  # fmt: skip
        out[metric] = {k: float(v) for k, v in figures.items()}
    return out


def markdown(result: dict, published: dict | None = None) -> str:
    """The Table 1 layout; `published` rows (from load_published) are marked with their
    source, so they are never mistaken for ours."""
    aus = result["aus"]
    keys = [k for k in aus if k != "average"]
    head = "| metric | " + " | ".join(keys) + " | Avg |"
    sep = "| --- " * (len(aus) + 1) + "|"
    rows = [
        f"| {m.upper()} | "
        + " | ".join(f"{aus[k][m]:.2f}" for k in keys)
        + f" | {aus['average'][m]:.2f} |"
        for m in ("icc", "mae")
    ]
    if published:
        for m in ("icc", "mae"):
            fig = published[m]
            cells = [f"{fig[k]:.2f}" if k in fig else "-" for k in [*keys, "average"]]
            rows.append(f"| {m.upper()} ({published['source']}) | " + " | ".join(cells) + " |")
    pose = ", ".join(f"{k} {v:.2f}" for k, v in result["pose_deg"].items())
    gaze = ", ".join(f"{k} {v:.2f}" for k, v in result["gaze_deg"].items())
    tail = [f"Held-out rendered pairs: {result['pairs']}"]
    if pose:  # AU datasets have no pose or gaze labels
        tail = [
            f"Head pose error (degrees, mean abs): {pose}",
            f"Gaze error (degrees, mean abs): {gaze}",
            *tail,
        ]
    return "\n".join([head, sep, *rows, "", *(tail if pose else [])]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.eval.regressor", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--regressor", type=Path)
    ap.add_argument("--parser", type=Path)
    ap.add_argument("--bundle", type=Path, help="evaluate this bundle's ONNX graph instead")
    ap.add_argument(
        "--dataset",
        choices=sorted(LOADERS),
        help="with --bundle: evaluate on an AU dataset in its published layout at --pairs",
    )
    ap.add_argument("--step", type=int, default=1, help="--dataset: every N-th frame")
    ap.add_argument(
        "--published",
        type=Path,
        help="--dataset: a TOML of published figures to print beside ours (see above)",
    )
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument(
        "--split",
        choices=("all", "heldout"),
        default="all",
        help="all: a folder rendered only for evaluation",
    )
    ap.add_argument(
        "--mirror",
        action="store_true",
        help="with --bundle: also evaluate on the pairs flipped (parameters mirrored) and "
        "print how differently the model reads a face and its mirror image",
    )
    args = ap.parse_args(argv)
    if args.dataset is not None:
        if args.bundle is None:
            ap.error("--dataset needs --bundle")
        return _eval_dataset(args.bundle, args.dataset, args.pairs, args.step, args.published)
    if args.published is not None:
        ap.error("--published needs --dataset: the papers publish DISFA and BP4D figures")
    if args.mirror and args.bundle is None:
        ap.error("--mirror needs --bundle")
    if args.bundle is not None:
        return _eval_bundle(args.bundle, args.pairs, args.split, args.mirror)
    if args.regressor is None or args.parser is None:
        ap.error("give --regressor and --parser, or --bundle")
    spec, device = load_spec(), pick_device()
    regressor, ckpt = load_checkpoint(args.regressor, spec, device)
    parser, _ = load_checkpoint(args.parser, spec, device)
    in_crop = bool(ckpt["model_config"].get("roll_in_crop", False))
    data = PairsDataset(args.pairs, args.split, crop_roll=in_crop)
    size = ckpt["model_config"]["image_size"]
    true, pred = predict(parser.to(device).eval(), regressor.to(device).eval(), data, size, device)
    result = evaluate(true, pred)
    md = markdown(result)
    print(md)
    out = args.regressor.parent
    (out / "eval.json").write_text(json.dumps({"step": ckpt["step"], **result}, indent=2))
    (out / "eval.md").write_text(f"Regressor at step {ckpt['step']}\n\n" + md)
    return 0


def _eval_dataset(
    bundle: Path, name: str, root: Path, step: int, published: Path | None = None
) -> int:
    aus = {"disfa": DISFA_AUS, "bp4d": BP4D_AUS}[name]
    paper = load_published(published, name, aus) if published is not None else None
    true, pred, skipped = predict_dataset(bundle, LOADERS[name](root, step), aus)
    table = au_table(true, pred, list(aus))
    result = {"aus": table, "pose_deg": {}, "gaze_deg": {}, "pairs": len(true)}
    print(markdown(result, paper))
    if paper is not None:
        print(f"Rows marked ({paper['source']}) are published figures from {published}, "
              "not measured here.")  # fmt: skip
    print(f"{name.upper()} at {root}: {len(true)} frames evaluated, {skipped} without a face")
    return 0


def _eval_bundle(bundle: Path, pairs: Path, split: str, mirror: bool = False) -> int:
    """Evaluate a bundle on pairs and write the result into its card; with `mirror`, also
    print the table on the mirrored pairs and the mirror consistency (not written)."""
    from au_retarget_addon.core.bundle import CARD_FILE, BundleError, read_card

    try:
        card = read_card(bundle)
        data = PairsDataset(pairs, split, crop_roll=bool(card.get("roll_in_crop", False)))
        true, pred = predict_bundle(bundle, data)
        mirrored = predict_bundle(bundle, data, mirror=True) if mirror else None
    except BundleError as exc:
        raise EvalError(str(exc)) from exc
    result = evaluate(true, pred)
    print(markdown(result))
    if mirrored is not None:
        print("\nThe same pairs flipped, parameters mirrored:\n")
        print(markdown(evaluate(*mirrored)))
        c = mirror_consistency(pred, mirrored[1])
        print(
            "\nMirror consistency, mean |R(crop) - mirror(R(flipped crop))|: AU intensity "
            f"{c['au_facs']:.3f} (FACS 0..5), head yaw {c['head_yaw_deg']:.2f}, head roll "
            f"{c['head_roll_deg']:.2f}, gaze yaw {c['gaze_yaw_deg']:.2f} degrees"
        )
    card["evaluation"] = result
    (bundle / CARD_FILE).write_text(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.eval.regressor", main))
