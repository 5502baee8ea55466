"""The five losses on real frames with the landmark F: the generator as F sees it learns F's
reading of real renders from their parameters, and R trained on a real clip through it
explains the clip's faces better (the content loss falls) and still exports as a bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import REPO

pytest.importorskip("mediapipe", reason="mediapipe (training extra) defines the face parts")

GROUPS = ["pose=aligned", "gaze=aligned", "au=aligned,parts", "identity=aligned"]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def trained(tiny_pairs, real_media, tmp_path_factory):
    """Warm-up R, the feature generator and 60 five-loss steps on the real clip talking_short
    (the training person franck), all on real renders and real frames."""
    tmp = tmp_path_factory.mktemp("five_losses")
    pairs = tmp / "pairs"
    shutil.copytree(tiny_pairs, pairs)
    env = {**os.environ, "AURT_CACHE": str(tmp / "cache")}
    (tmp / "cache" / "real_media").mkdir(parents=True)
    shutil.copy2(real_media / "talking_short.mp4", tmp / "cache" / "real_media")
    py = sys.executable
    res = _run([py, str(REPO / "ml" / "blender" / "crop_rolls.py"), "--", "--pairs", str(pairs)],
               env)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    warm = [py, "-m", "ml.train.landmark_regressor", "--pairs", str(pairs), "--run"]
    warm += [str(tmp / "warm"), "--steps", "200", "--batch", "16", "--depth", "0"]
    warm += ["--inputs", "aligned", "parts", "--group-inputs", *GROUPS]
    res = _run(warm, env)
    assert res.returncode == 0, res.stderr[-2000:]
    gen = [py, "-m", "ml.train.feature_generator", "--pairs", str(pairs), "--eval-pairs"]
    gen += [str(pairs), "--run", str(tmp / "gen"), "--landmark-model", "468"]
    gen += ["--steps", "300", "--batch", "16", "--width", "64", "--depth", "2"]
    res = _run(gen, env)
    assert res.returncode == 0, res.stderr[-2000:]
    five = [py, "-m", "ml.train.landmark_five_losses", "--regressor", str(tmp / "warm" / "last.pt")]
    five += ["--generator", str(tmp / "gen" / "last.pt"), "--pairs", str(pairs)]
    five += ["--run", str(tmp / "five"), "--clips", "talking_short", "--steps", "60"]
    five += ["--batch", "16", "--lr", "1e-3", "--mirror", "0.1"]
    res = _run(five, env)
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp, env, five


def test_the_generator_reads_renders_closer_than_the_mean_face(trained):
    tmp, _, _ = trained
    summary = json.loads((tmp / "gen" / "summary.json").read_text())["held_out"]
    err, mean = summary["landmark_error_iod"], summary["mean_face_error_iod"]
    assert set(err) == {"eye_left", "eye_right", "brow_left", "brow_right", "nose", "mouth",
                        "face", "all"}  # fmt: skip
    assert err["all"] < mean["all"]  # fitted on these renders: it learned what they show


def test_five_losses_train_on_real_frames_and_export(trained, tmp_path):
    from au_retarget_addon.core.bundle import ModelBundle

    tmp, env, _ = trained
    log = [json.loads(line) for line in (tmp / "five" / "log.jsonl").read_text().splitlines()]
    assert {"content", "identity", "parameter", "loopback", "adversarial", "supervised",
            "mirror", "discriminator"} <= set(log[0])  # fmt: skip
    assert log[-1]["content"] < log[0]["content"]  # R explains the real faces better
    summary = json.loads((tmp / "five" / "summary.json").read_text())
    assert summary["people"] == ["franck"] and summary["step"] == 260
    assert 0 < summary["real_frames"] <= 90  # the crops F reads as a face
    res = _run([sys.executable, "-m", "ml.export.bundle", "--regressor",
                str(tmp / "five" / "last.pt"), "--out", str(tmp_path / "b")], env)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    b = ModelBundle(tmp_path / "b", device="cpu")
    crops = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    assert np.isfinite(b.run(crops, crop_rolls=np.zeros(2))).all()


def test_the_five_losses_refuse_what_they_cannot_train(trained, tmp_path):
    tmp, env, five = trained
    wrong = [*five]
    wrong[wrong.index("--regressor") + 1] = str(tmp / "gen" / "last.pt")  # a generator
    res = _run(wrong, env)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "landmark_regressor" in res.stderr.strip().splitlines()[-1]
    res = _run([*five[:-4], "--clips", "cap12_edit"], env)  # a held-out person's clip
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "cap12_edit" in res.stderr


def test_identity_spread_is_zero_only_for_one_identity_per_face():
    from ml.losses.identity import identity_spread

    same = torch.tensor([[0.2, 0.4], [0.2, 0.4], [0.9, 0.1]])
    assert float(identity_spread(same, torch.tensor([0, 0, 1]))) == 0.0
    assert float(identity_spread(same, torch.tensor([0, 1, 0]))) == pytest.approx(0.29 / 6)


def test_mirror_loss_is_zero_when_the_mirror_image_reads_as_the_face_mirrored():
    from ml.losses.mirror import MirrorLoss
    from rigs import load_spec

    spec = load_spec()
    rng = np.random.default_rng(0)
    p = spec.mins() + rng.random((4, spec.size)) * (spec.maxs() - spec.mins())
    loss = MirrorLoss(spec)
    mirrored = torch.from_numpy(spec.mirrored(p)).float()
    assert float(loss(torch.from_numpy(p).float(), mirrored)) < 1e-6
    # the same reading for the face and its mirror image is wrong wherever the face is not
    # symmetric: a smile on one side, a turned head
    assert float(loss(torch.from_numpy(p).float(), torch.from_numpy(p).float())) > 0.05
