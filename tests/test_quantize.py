"""Int8 bundles from onnxruntime static quantisation, and evaluation of a bundle's own
ONNX graph (what ships) on rendered pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from au_retarget_addon.core.bundle import ModelBundle
from ml.eval import regressor as eval_regressor
from ml.export.quantize import pair_crops, quantize_bundle


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


def test_mirror_evaluation_flips_the_crops_and_mirrors_the_targets(
    tiny_bundle, tiny_pairs, tmp_path, capsys
):
    import shutil

    from ml.data.pairs_dataset import PairsDataset
    from rigs import load_spec

    spec = load_spec()
    data = PairsDataset(tiny_pairs, "all")
    true, pred = eval_regressor.predict_bundle(tiny_bundle, data)
    true_m, pred_m = eval_regressor.predict_bundle(tiny_bundle, data, mirror=True)
    np.testing.assert_allclose(true_m, spec.mirrored(true), atol=1e-5)
    assert not np.allclose(pred_m, pred)  # the graph saw other (flipped) crops

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    argv = ["--bundle", str(bundle), "--pairs", str(tiny_pairs), "--mirror"]
    assert eval_regressor.main(argv) == 0
    assert "Mirror consistency" in capsys.readouterr().out
    ev = json.loads((bundle / "model_card.json").read_text())["evaluation"]
    assert ev == json.loads(json.dumps(eval_regressor.evaluate(true, pred)))  # the unflipped

    # a model that reads both sides alike scores 0; one that reads a smile on its left
    # whichever side it is on does not
    assert eval_regressor.mirror_consistency(pred, spec.mirrored(pred))["au_facs"] < 1e-6
    lopsided = np.tile(spec.defaults(), (4, 1))
    lopsided[:, spec.param("AU12_L").index] = 1.0
    lopsided[:, spec.param("head_yaw").index] = 10.0
    c = eval_regressor.mirror_consistency(lopsided, lopsided)
    n_au = sum(p.facs is not None for p in spec.params)
    assert c["au_facs"] == pytest.approx(2 / n_au * 5) and c["head_yaw_deg"] == pytest.approx(20)
