"""Recovering a trainable regressor from a bundle (ml/export/bundle_weights.py), on the shipped
int8 default: the recovered torch model reads the sample video as the ONNX graph does.
(The exact round trip of an fp32 export, and training from the result, are in
tests/test_train_regressor.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from au_retarget_addon.core.align import align_face
from au_retarget_addon.core.bundle import ModelBundle
from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from au_retarget_addon.core.video import VideoReader
from au_retarget_addon.resources import DEFAULT_BUNDLE
from ml.export.bundle_weights import BundleWeightsError, recover
from ml.nets.mtcnn import fetch as fetch_mtcnn
from ml.nets.regressor import FaceToParams
from rigs import load_spec
from tests.conftest import MEDIA


def test_the_shipped_default_comes_back_as_a_torch_model_that_reads_video_alike() -> None:
    spec = load_spec()
    bundle = ModelBundle(DEFAULT_BUNDLE, spec.hash(), device="cpu")
    reg, info = recover(DEFAULT_BUNDLE, spec)
    assert info["extra"]["bundle_step"] == bundle.card["step"]
    fetch_mtcnn(DEFAULT_MODEL_DIR)
    detector, crops = FaceDetector(DEFAULT_MODEL_DIR), []
    with VideoReader(MEDIA / "single_face.mp4") as video:
        for _, _, image in video.frames(0, video.info.frame_count, 6):
            face = detector.detect(image)[0]
            crops.append(align_face(image, face.points, bundle.input.size)[0])
    x = bundle.normalise(np.stack(crops))
    graph = bundle.session.run(None, {bundle.session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        torch_out = FaceToParams(torch.nn.Identity(), reg.eval())(torch.from_numpy(x)).numpy()
    groups = bundle.card["groups"]
    names = list(bundle.names)
    diff = {
        g: np.abs(graph - torch_out)[:, [names.index(n) for n in groups[g]]].mean()
        for g in ("au", "pose")
    }
    # the int8 graph also quantises activations; its card measured up to 0.06 (AU) and
    # 1.4 degrees (pose) against the fp32 graph
    assert diff["au"] < 0.02 and diff["pose"] < 1.0, diff
    au12 = torch_out[:, names.index("AU12_L")]
    assert au12[:2].max() < 0.2 and au12[5:].min() > 0.5  # the smile, as the graph reads it


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
