"""Export a parameter regressor to a model bundle: ONNX + model card, checked with
onnxruntime against torch before anything is renamed into place.

The network takes normalised crops (B, 3, S, S) and returns (B, P) parameters in spec
order; the card records names, order, ranges, groups, the input normalisation and the
rig spec hash, which is all the tracking runtime relies on.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rigs.spec import RigSpec

from .errors import MLError

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
) -> Path:
    """Write OUT/model.onnx and OUT/model_card.json atomically (a temp folder, renamed)."""
    import onnxruntime as ort

    model = model.eval().cpu()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = model(x).numpy()
    if expected.shape != (2, spec.size):
        raise ExportError(f"model returns {expected.shape[1:]} values, the rig has {spec.size}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_bundle_", dir=out.parent))
    try:
        torch.onnx.export(
            model,
            (x,),
            str(tmp / "model.onnx"),
            input_names=["image"],
            output_names=["params"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, "params": {0: "batch"}},
        )
        sess = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": x.numpy()})[0]
        diff = float(np.abs(got - expected).max())
        if diff > atol:
            raise ExportError(f"ONNX output differs from torch by {diff:.2e} (> {atol:.0e})")
        card = model_card(spec, size, {**(extra or {}), "onnx_max_abs_diff": diff})
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
