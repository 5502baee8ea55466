"""Identity networks: the face-api ResNet port against dlib's own descriptors on real face
chips, gradients to the input, the pinned-hash fetch, TF.js dequantisation, and the
official LightCNN checkpoint layout."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from ml.nets.identity import (
    DEFAULT_OUT,
    IdentityWeightsError,
    LightCNN29v2,
    LightCNNConfig,
    fetch,
    load_faceapi_resnet,
    load_lightcnn,
    rgb_to_gray,
)
from ml.nets.identity import faceapi_resnet as far
from ml.nets.identity._common import sha256_hex

DATA = Path(__file__).parent / "data" / "identity"  # sources and licences: README.md there
# Rows of dlib_descriptors.npy, in order: chip file -> person.
CHIPS = {
    "biden.png": "biden",
    "obama_1.png": "obama",
    "obama_2.png": "obama",
    "obama_3.png": "obama",
    "video_f00.png": "video",
    "video_f24.png": "video",
    "video_f48.png": "video",
}
DLIB_THRESHOLD = 0.6  # dlib's same-person threshold on descriptor distance
# Tolerances against dlib's float32 model: the face-api weights are uint8-quantised, which
# costs about 4e-4 of cosine similarity and 0.01 of pairwise distance on these chips.
MIN_COSINE = 0.999
MAX_DISTANCE_ERROR = 0.02


@pytest.fixture(scope="module")
def faceapi() -> far.FaceApiResNet:
    return load_faceapi_resnet(fetch(DEFAULT_OUT))  # fetch: no-op when already converted


@pytest.fixture(scope="module")
def chips() -> torch.Tensor:
    """The test chips as (N, 3, 150, 150) RGB in [0, 1]."""
    imgs = [cv2.cvtColor(cv2.imread(str(DATA / name)), cv2.COLOR_BGR2RGB) for name in CHIPS]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def descriptors(faceapi, chips) -> tuple[np.ndarray, np.ndarray]:
    """(dlib's descriptors, the torch port's descriptors) for the chips."""
    with torch.no_grad():
        ours = faceapi(chips).numpy()
    return np.load(DATA / "dlib_descriptors.npy"), ours


def _distances(d: np.ndarray) -> np.ndarray:
    return np.linalg.norm(d[:, None] - d[None], axis=-1)


def _pairs(same: bool) -> list[tuple[int, int]]:
    people = list(CHIPS.values())
    n = len(people)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if (people[i] == people[j]) == same]


def test_descriptors_match_dlib_per_chip(descriptors):
    ref, ours = descriptors
    assert ref.shape == ours.shape == (len(CHIPS), 128)
    cos = (ref * ours).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(ours, axis=1)
    assert cos.min() >= MIN_COSINE, dict(zip(CHIPS, cos.round(5), strict=True))


def test_port_is_exact_against_faceapi_js(descriptors):
    # face-api.js's own forward pass on the same weights (README.md in DATA): any layer,
    # padding or normalisation mistake would show up far above float32 rounding here.
    js = np.load(DATA / "faceapi_js_descriptors.npy")
    np.testing.assert_allclose(descriptors[1], js, rtol=0, atol=1e-4)


def test_pairwise_distances_match_dlib(descriptors):
    ref, ours = descriptors
    err = np.abs(_distances(ref) - _distances(ours))
    assert err.max() <= MAX_DISTANCE_ERROR


@pytest.mark.parametrize("which", ["dlib", "torch"])
def test_same_person_below_threshold_different_above(descriptors, which):
    dist = _distances(descriptors[0 if which == "dlib" else 1])
    same = [dist[i, j] for i, j in _pairs(same=True)]
    diff = [dist[i, j] for i, j in _pairs(same=False)]
    assert len(same) == 6 and len(diff) == 15
    assert max(same) < DLIB_THRESHOLD < min(diff)


def test_faceapi_gradients_reach_the_input(faceapi, chips):
    # a 128 px crop (the project's size) goes through the differentiable resize too
    x = torch.nn.functional.interpolate(chips[:2], size=128, mode="area").requires_grad_(True)
    d = faceapi(x)
    (d[0] - d[1]).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in faceapi.parameters())  # frozen


def test_lightcnn_gradients_reach_the_input():
    torch.manual_seed(0)
    net = LightCNN29v2(LightCNNConfig(num_classes=8)).eval().requires_grad_(False)
    rgb = torch.rand(2, 3, 128, 128, requires_grad=True)
    feat = net(rgb_to_gray(rgb))
    assert feat.shape == (2, 256)
    (1 - torch.cosine_similarity(feat[0], feat[1], dim=0)).backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    """An npm-style tarball with `files` under package/model/."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/model/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_fetch_refuses_a_manifest_with_another_sha256(tmp_path):
    tgz = _tarball(tmp_path / "p.tgz", {far.MANIFEST: b"[]", far.WEIGHTS_BIN: b"\0" * 8})
    with pytest.raises(IdentityWeightsError, match=f"{far.MANIFEST}: sha256"):
        fetch(tmp_path / "out", tarball=tgz)
    assert not (tmp_path / "out" / far.WEIGHTS_NAME).exists()


def test_fetch_refuses_weights_with_another_sha256(tmp_path, monkeypatch):
    manifest = b"[]"
    monkeypatch.setitem(far.SHA256, far.MANIFEST, sha256_hex(manifest))
    tgz = _tarball(tmp_path / "p.tgz", {far.MANIFEST: manifest, far.WEIGHTS_BIN: b"\0" * 8})
    with pytest.raises(IdentityWeightsError, match=f"{far.WEIGHTS_BIN}: sha256"):
        fetch(tmp_path / "out", tarball=tgz)
    assert not (tmp_path / "out" / far.WEIGHTS_NAME).exists()


def test_dequantize_follows_tfjs_and_torch_layouts():
    q = np.arange(2 * 1 * 2 * 3, dtype=np.uint8)  # HWIO (kh=2, kw=1, in=2, out=3)
    half = np.array([0.5, -2.0], dtype=np.float16)
    manifest = [
        {
            "paths": ["a.bin", "b.bin"],
            "weights": [
                {
                    "name": "conv32_1/conv1/conv/filters",
                    "shape": [2, 1, 2, 3],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.1, "min": -0.3},
                },
                {
                    "name": "conv32_1/conv1/scale/biases",
                    "shape": [2],
                    "dtype": "float32",
                    "quantization": {"dtype": "float16"},
                },
            ],
        }
    ]
    blob = q.tobytes() + half.tobytes()  # split across two shards, as TF.js allows
    weights = far.dequantize_tfjs(manifest, {"a.bin": blob[:5], "b.bin": blob[5:]})
    want = (q.astype(np.float64) * 0.1 - 0.3).astype(np.float32).reshape(2, 1, 2, 3)
    np.testing.assert_array_equal(weights["conv32_1/conv1/conv/filters"], want)
    np.testing.assert_array_equal(weights["conv32_1/conv1/scale/biases"], [0.5, -2.0])
    state = far.to_state_dict(weights)
    assert state["conv32_1.conv1.conv.weight"].shape == (3, 2, 2, 1)  # OIHW
    assert state["conv32_1.conv1.conv.weight"][2, 1, 1, 0] == float(want[1, 0, 1, 2])
    assert far.torch_key("fc") == "fc.weight"


def test_converted_state_dict_is_complete(faceapi):
    state = torch.load(DEFAULT_OUT / far.WEIGHTS_NAME, map_location="cpu", weights_only=True)
    assert set(state) == set(faceapi.state_dict())
    assert sum(v.numel() for v in state.values()) == 5_614_592
    assert "1.7.15" in (DEFAULT_OUT / "SOURCE.md").read_text()


def _official_checkpoint(path: Path, cfg: LightCNNConfig) -> dict[str, torch.Tensor]:
    """Write a LightCNN checkpoint the way the official train.py does (a DataParallel
    model's state dict under 'state_dict', with epoch/arch/prec1); return its bare state."""
    torch.manual_seed(1)
    model = nn.DataParallel(LightCNN29v2(cfg))
    ckpt = {"epoch": 3, "arch": "LightCNN-29v2", "state_dict": model.state_dict(), "prec1": 0.5}
    assert all(k.startswith("module.") for k in ckpt["state_dict"])
    torch.save(ckpt, path)
    return model.module.state_dict()


def test_lightcnn_loads_the_official_checkpoint_layout(tmp_path):
    cfg = LightCNNConfig(num_classes=10)  # the released file has 80013; smaller here for speed
    want = _official_checkpoint(tmp_path / "LightCNN_29Layers_V2_checkpoint.pth.tar", cfg)
    net = load_lightcnn(tmp_path / "LightCNN_29Layers_V2_checkpoint.pth.tar")
    assert net.cfg.num_classes == 10 and not net.training
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, want[key], rtol=0, atol=0)
    torch.save(want, tmp_path / "bare.pt")  # a bare state dict loads too
    with torch.no_grad():
        x = torch.rand(1, 1, 128, 128)
        torch.testing.assert_close(load_lightcnn(tmp_path / "bare.pt")(x), net(x))


def test_lightcnn_strict_load_names_the_file(tmp_path):
    state = LightCNN29v2(LightCNNConfig(num_classes=4)).state_dict()
    del state["group4.conv.filter.bias"]
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "x.pth")
    with pytest.raises(IdentityWeightsError, match=r"x\.pth.*group4\.conv\.filter\.bias"):
        load_lightcnn(tmp_path / "x.pth")
    with pytest.raises(IdentityWeightsError, match="no LightCNN checkpoint"):
        load_lightcnn(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_text(json.dumps({"not": "a checkpoint"}))
    with pytest.raises(IdentityWeightsError, match=r"junk\.pth"):
        load_lightcnn(tmp_path / "junk.pth")
