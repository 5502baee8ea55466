"""Int8 model bundles: static quantisation of a bundle's ONNX graph with onnxruntime (QDQ,
per-channel int8 weights, uint8 activations), calibrated on aligned crops of rendered pairs.

    python -m ml.export.quantize --bundle runs/recipe/bundle --pairs data/recipe/pairs \
        --out runs/recipe/bundle_int8

A quarter of the fp32 size, and faster on CPUs with int8 dot products. What it costs in
accuracy is measured by evaluating the quantised bundle itself
(`python -m ml.eval.regressor --bundle ...`); the card records the calibration and the
largest difference from the fp32 graph per parameter group.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from au_retarget_addon.core.bundle import CARD_FILE, MODEL_FILE, BundleError, ModelBundle
from ml.data.pairs_dataset import PairsDataset
from ml.errors import MLError, exit_on_error
from ml.export.atomic import atomic_folder


class QuantizeError(MLError, RuntimeError):
    """The bundle cannot be quantised (names the bundle or pairs folder)."""


def pair_crops(pairs: Path, size: int, count: int, split: str = "all") -> np.ndarray:
    """Up to `count` aligned crops (N, size, size, 3) uint8 RGB from rendered pairs, evenly
    spread over the dataset."""
    import cv2

    data = PairsDataset(pairs, split)
    idx = np.linspace(0, len(data) - 1, min(count, len(data))).round().astype(int)
    crops = []
    for i in idx:
        img = (data[int(i)]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        if img.shape[0] != size:
            img = np.asarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), np.uint8)
        crops.append(img)
    return np.stack(crops)


def quantize_bundle(src: Path, out: Path, pairs: Path, count: int = 128) -> Path:
    """Write an int8 copy of bundle `src` to `out` (atomically) and return it."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = ModelBundle(src, device="cpu")
    crops = pair_crops(pairs, fp32.input.size, count)
    batches = [fp32.normalise(crops[i : i + 16]) for i in range(0, len(crops), 16)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"image": x}

    with atomic_folder(out, ".tmp_int8_") as tmp:
        pre = tmp / "pre.onnx"
        quant_pre_process(str(src / MODEL_FILE), str(pre))
        quantize_static(
            str(pre),
            str(tmp / MODEL_FILE),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
        pre.unlink()
        card = json.loads((src / CARD_FILE).read_text())
        card["quantization"] = {
            "method": "onnxruntime static QDQ, per-channel int8 weights, uint8 activations",
            "calibration": f"{len(crops)} aligned crops of {pairs.name}",
            "fp32_bytes": (src / MODEL_FILE).stat().st_size,
            "int8_bytes": (tmp / MODEL_FILE).stat().st_size,
        }
        card["evaluation"] = None  # measured again on the int8 graph (eval_regressor --bundle)
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2))
        int8 = ModelBundle(tmp, device="cpu")
        zero = np.zeros(len(crops))  # the graphs' own outputs, whatever their roll frame
        diff = np.abs(int8.run(crops, crop_rolls=zero) - fp32.run(crops, crop_rolls=zero))
        groups = card.get("groups", {})
        card["quantization"]["max_abs_diff_vs_fp32"] = {
            g: float(diff[:, [fp32.names.index(n) for n in names]].max())
            for g, names in groups.items()
            if names
        }
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.export.quantize", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--bundle", type=Path, required=True, help="fp32 bundle folder")
    ap.add_argument("--pairs", type=Path, required=True, help="rendered pairs for calibration")
    ap.add_argument("--out", type=Path, required=True, help="int8 bundle folder to write")
    ap.add_argument("--count", type=int, default=128, help="calibration crops")
    args = ap.parse_args(argv)
    if not args.bundle.is_dir():
        raise QuantizeError(f"bundle {args.bundle} does not exist")
    try:
        out = quantize_bundle(args.bundle, args.out, args.pairs, args.count)
    except BundleError as exc:
        raise QuantizeError(str(exc)) from exc
    q = json.loads((out / CARD_FILE).read_text())["quantization"]
    print(f"wrote {out}: {q['fp32_bytes'] / 1e6:.1f} MB -> {q['int8_bytes'] / 1e6:.1f} MB")
    print("max abs difference from fp32 per group:", q["max_abs_diff_vs_fp32"])
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.export.quantize", main))
