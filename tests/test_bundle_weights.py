"""Recovering a trainable regressor from a bundle (ml/export/bundle_weights.py): what it
refuses, and why. (The exact round trip of an fp32 parser-F export, and training from the
result, are in tests/test_train_regressor.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from au_retarget_addon.resources import DEFAULT_BUNDLE
from ml.export.bundle_weights import BundleWeightsError, recover
from rigs import load_spec


def test_a_landmark_f_bundle_is_refused_with_what_to_do_instead() -> None:
    # the shipped default reads MediaPipe's landmark network: nothing to recover, since its
    # heads retrain in seconds from cached features
    with pytest.raises(BundleWeightsError, match="landmark-F bundle.*ml.train.landmark_regressor"):
        recover(DEFAULT_BUNDLE, load_spec())


def test_a_bundle_for_another_rig_or_without_its_graph_is_refused(tmp_path: Path) -> None:
    spec = load_spec()
    other = tmp_path / "other"
    other.mkdir()
    card = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())
    (other / "model_card.json").write_text(json.dumps({**card, "spec_hash": "0" * 64}))
    with pytest.raises(BundleWeightsError, match="has no model.onnx"):
        recover(other, spec)
    shutil.copy(DEFAULT_BUNDLE / "model.onnx", other / "model.onnx")
    with pytest.raises(BundleWeightsError, match=f"{other} was made for rig spec 0000"):
        recover(other, spec)
