"""F on the landmark network and R on it: part masks sit on their parts of a real face, F
is frozen but differentiable in the image, R's head learns from cached features of real
renders, and F and R export as one bundle that the tracking runtime runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ml.data.pairs_layout import list_pairs, read_pair
from tests.conftest import MEDIA, REPO

pytest.importorskip("mediapipe", reason="mediapipe (training extra) defines the face parts")


@pytest.fixture(scope="module")
def f():
    from ml.nets.landmark_features import LandmarkF

    return LandmarkF()


@pytest.fixture(scope="module")
def face_crops() -> np.ndarray:
    """Aligned 192 px crops of the sample video (every 12th frame), as the tracker makes."""
    from au_retarget_addon.core.align import align_face
    from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
    from au_retarget_addon.core.video import VideoReader

    det = FaceDetector(DEFAULT_MODEL_DIR)
    with VideoReader(MEDIA / "single_face.mp4") as v:
        return np.stack(
            [align_face(rgb, det.detect(rgb)[0].points, 192)[0] for _, _, rgb in v.frames(step=12)]
        )


def _x(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Crops turned in-plane about their centre."""
    t = np.radians(degrees)
    theta = torch.tensor([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0]])
    grid = torch.nn.functional.affine_grid(
        theta.float().expand(len(x), 2, 3), list(x.shape), align_corners=False
    )
    return torch.nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)


def test_part_masks_sit_on_their_parts_of_a_real_face(f, face_crops):
    with torch.no_grad():
        out = f(_x(face_crops))
    assert out["presence"].min() > 0.9
    masks = f._masks(out["landmarks"][:, :, :2] + 0.5, 24)  # (N, K, 24, 24)
    peak = {}
    for k, name in enumerate(f.part_names):
        m = masks[:, k].mean(0)
        r, c = np.unravel_index(int(m.argmax()), m.shape)
        peak[name] = (r, c)
    # the subject's left eye is on the image's right; brows above eyes; mouth below the nose
    assert peak["eye_left"][1] > peak["eye_right"][1]
    assert (
        peak["brow_left"][0] < peak["eye_left"][0] and peak["brow_right"][0] < peak["eye_right"][0]
    )
    assert peak["mouth"][0] > peak["nose"][0] > peak["eye_left"][0]
    assert out["vector"].shape == (len(face_crops), f.dim)


def test_aligned_landmarks_are_in_the_eyes_frame_of_a_real_face(f, face_crops):
    """Eye centres at (+-0.5, 0), the mouth below them, and the eye line's angle in the
    crop: near level for aligned crops, the crop's own turn for a turned crop."""
    from ml.nets.landmark_features import LandmarkF, LandmarkNetError, part_indices

    idx = part_indices()
    with torch.no_grad():
        out = f(_x(face_crops))
        turned = [f(_rotate(_x(face_crops[:1]), deg))["aligned"][0, -2] for deg in (15, -15)]
    a = out["aligned"]
    assert a.shape == (len(face_crops), f.net.points * 3 + 2)
    xyz = a[:, :-2].reshape(len(face_crops), -1, 3)
    left, right = xyz[:, idx["eye_left"]].mean(1), xyz[:, idx["eye_right"]].mean(1)
    assert torch.allclose(left[:, :2], torch.tensor([0.5, 0.0]).expand(len(a), 2), atol=1e-5)
    assert torch.allclose(right[:, :2], torch.tensor([-0.5, 0.0]).expand(len(a), 2), atol=1e-5)
    assert (xyz[:, idx["mouth"], 1].mean(1) > 0.7).all()  # image y grows downward
    assert (a[:, -2].abs() < 0.2).all() and (a[:, -1] > 0.98).all()  # sin, cos: level
    base = float(a[0, -2])
    for got, want in zip(turned, (np.sin(np.radians(15)), -np.sin(np.radians(15))), strict=True):
        assert abs(abs(float(got) - base) - abs(want)) < 0.08  # the crop's turn, measured
    assert (float(turned[0]) - base) * (float(turned[1]) - base) < 0  # in opposite senses
    only = LandmarkF(f.net, ("aligned",))
    with torch.no_grad():
        assert torch.equal(only(_x(face_crops[:2]))["vector"], out["aligned"][:2])
    with pytest.raises(LandmarkNetError, match="F's inputs"):
        LandmarkF(f.net, ("eyes",))


def test_f_is_frozen_and_differentiable_in_the_image(f, face_crops):
    x = _x(face_crops[:2]).requires_grad_()
    f.train()  # a regressor's train() must not put the frozen network in training mode
    assert not f.net.training
    f(x)["vector"].pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in f.parameters())


GROUP_INPUTS = {"pose": ["aligned"], "gaze": ["aligned"], "au": ["aligned", "parts"],
                "identity": ["aligned"]}  # fmt: skip


def test_each_sub_network_reads_only_its_groups_inputs(f, face_crops):
    from ml.nets.landmark_regressor import (
        LandmarkRegressor,
        LandmarkRegressorConfig,
        LandmarkRegressorError,
    )
    from rigs.spec import load_spec

    spec = load_spec()
    with torch.no_grad():
        out = f(_x(face_crops[:3]))
    dims = {k: int(out[k].flatten(1).shape[1]) for k in ("aligned", "parts")}
    v = torch.cat([out["aligned"].flatten(1), out["parts"].flatten(1)], dim=1)

    def build(**kw):
        cfg = dict(in_dim=v.shape[1], inputs=("aligned", "parts"), depth=0,
                   group_inputs=GROUP_INPUTS, input_dims=dims)  # fmt: skip
        return LandmarkRegressor(spec, LandmarkRegressorConfig(**{**cfg, **kw})).eval()

    torch.manual_seed(0)
    r = build()
    moved = v.clone()
    moved[:, dims["aligned"] :] += 1.0  # only the part features change
    with torch.no_grad():
        a, b = r(v), r(moved)
    geometry = [p.index for g in ("pose", "gaze", "identity") for p in spec.group(g)]
    aus = [p.index for p in spec.group("au")]
    assert torch.equal(a["logits"][:, geometry], b["logits"][:, geometry])
    assert torch.equal(a["brow_logits"], b["brow_logits"])  # the brow style sits with identity
    assert (a["logits"][:, aus] - b["logits"][:, aus]).abs().min() > 0
    assert a["params"].shape == (3, spec.size)
    with pytest.raises(LandmarkRegressorError, match="give each of"):
        build(group_inputs={"pose": ["aligned"]})
    with pytest.raises(LandmarkRegressorError, match="each one of inputs"):
        build(group_inputs={**GROUP_INPUTS, "au": ["global"]})
    with pytest.raises(LandmarkRegressorError, match="add up to"):
        build(input_dims={"aligned": dims["aligned"], "parts": 1})


def test_head_learns_cached_render_features_and_exports_a_bundle(tiny_pairs, tmp_path):
    """Tiny pairs at 64 px: F resizes them to its input; a few hundred head steps fit them."""
    from au_retarget_addon.core.bundle import ModelBundle

    pairs = tmp_path / "pairs"  # a copy: crop rolls are written into the dataset
    shutil.copytree(tiny_pairs, pairs)
    rolls = [sys.executable, str(REPO / "ml" / "blender" / "crop_rolls.py"), "--"]
    rolls += ["--pairs", str(pairs)]
    assert subprocess.run(rolls, capture_output=True).returncode == 0
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    cmd = [sys.executable, "-m", "ml.train.landmark_regressor", "--pairs", str(pairs)]
    cmd += ["--run", str(run), "--steps", "300", "--batch", "16"]
    cmd += ["--inputs", "aligned", "parts"]  # R reads F's outputs by name, in the bundle too
    # the shipped form: a linear sub-network per group, pose from the landmarks alone
    cmd += ["--depth", "0", "--group-inputs"] + [
        f"{g}={','.join(v)}" for g, v in GROUP_INPUTS.items()
    ]
    env = {**os.environ, "AURT_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    export = [sys.executable, "-m", "ml.export.bundle", "--regressor", str(run / "last.pt")]
    res = subprocess.run([*export, "--out", str(bundle)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    res = subprocess.run(  # a landmark-F regressor reads no parser: naming one is an error
        [*export, "--parser", str(run / "last.pt"), "--out", str(tmp_path / "b2")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert res.returncode != 0 and "drop --parser" in res.stderr and "Traceback" not in res.stderr
    assert list((tmp_path / "cache" / "features").glob("*.npz"))  # features cached
    bad = subprocess.run(  # a group named twice or left out: one clear line
        [*cmd[:-4], "pose=aligned", "pose=parts"], capture_output=True, text=True, cwd=REPO,
        env=env,
    )  # fmt: skip
    assert bad.returncode != 0 and "--group-inputs" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert json.loads((run / "summary.json").read_text())["step"] == 300
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").open()]
    assert losses[-1] < 0.6 * losses[0]
    b = ModelBundle(bundle, device="cpu")
    assert b.input.size == 64 and b.roll_in_crop
    cfg = json.loads(b.card["training_config"])
    assert cfg["inputs"] == "['aligned', 'parts']"
    assert "au=aligned,parts" in cfg["group_inputs"]
    crops = np.stack([read_pair(p).image for p in list_pairs(pairs)[:4]])
    out = b.run(crops, crop_rolls=np.zeros(4))
    assert out.shape == (4, len(b.names)) and np.isfinite(out).all()
    lo = np.array([b.card["ranges"][n][0] for n in b.names])
    hi = np.array([b.card["ranges"][n][1] for n in b.names])
    assert np.all(out >= lo - 1e-4) and np.all(out <= hi + 1e-4)
    assert "Apache-2.0" in b.card["feature_extractor"]["licence"]
    # F's landmarks and face presence come out of the bundle beside the parameters, and F's
    # weights are stored in half precision (MediaPipe's own), computed in fp32
    sess_out = [o.name for o in b.session.get_outputs()]
    assert sess_out == ["params", "landmarks", "presence"]
    x = b.normalise(crops)
    params, lm, presence = b.session.run(None, {"image": x})
    points = int(b.card["feature_extractor"]["network"].split()[-1])
    assert lm.shape == (4, points, 3) and presence.shape == (4,)
    assert 0 < lm[..., :2].mean() < 64 and np.all((presence >= 0) & (presence <= 1))
    assert "fp16" in b.card["weights"]
