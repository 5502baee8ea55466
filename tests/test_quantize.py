"""Int8 bundles from onnxruntime static quantisation, and evaluation of a bundle's own
ONNX graph (what ships) on rendered pairs."""

from __future__ import annotations

import json

import numpy as np

from au_retarget_addon.core.bundle import ModelBundle
from ml import eval_regressor
from ml.quantize import pair_crops, quantize_bundle


def test_int8_bundle_is_smaller_runs_and_stays_close_to_fp32(tiny_bundle, tiny_pairs, tmp_path):
    out = quantize_bundle(tiny_bundle, tmp_path / "int8", tiny_pairs, count=16)
    card = json.loads((out / "model_card.json").read_text())
    q = card["quantization"]
    assert q["int8_bytes"] < q["fp32_bytes"]
    fp32, int8 = ModelBundle(tiny_bundle), ModelBundle(out)
    crops = pair_crops(tiny_pairs, fp32.input.size, 24)
    a, b = fp32.run(crops), int8.run(crops)
    aus = [fp32.names.index(n) for n in card["groups"]["au"]]
    pose = [fp32.names.index(n) for n in card["groups"]["pose"]]
    assert np.abs(a[:, aus] - b[:, aus]).max() < 0.05  # AU values span 0..1
    assert np.abs(a[:, pose] - b[:, pose]).max() < 3.0  # degrees
    assert set(q["max_abs_diff_vs_fp32"]) >= {"pose", "gaze", "au"}


def test_evaluating_a_bundle_writes_the_table_into_its_card(tiny_bundle, tiny_pairs, tmp_path):
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    assert eval_regressor.main(["--bundle", str(bundle), "--pairs", str(tiny_pairs)]) == 0
    ev = json.loads((bundle / "model_card.json").read_text())["evaluation"]
    assert (
        ev["pairs"] == 24
        and "average" in ev["aus"]
        and set(ev["pose_deg"])
        == {
            "yaw",
            "pitch",
            "roll",
        }
    )
