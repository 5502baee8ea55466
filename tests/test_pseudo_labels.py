"""MediaPipe face-mesh pseudo-labels on real frames of the sample video, their use in
parser training (unknown pixels ignored) and mIoU on held-out real frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR, FaceDetector
from ml.data.augment import AugmentConfig, augment, flip_map
from ml.data.pseudo_labels import UNKNOWN, LabelledFaces, collect
from rigs import load_spec
from tests.conftest import MEDIA

LABELS = load_spec().labels


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    crops, masks, names = collect(
        [MEDIA / "single_face.mp4"], 64, 6, FaceDetector(DEFAULT_MODEL_DIR)
    )
    out = tmp_path_factory.mktemp("pl") / "real_labels.npz"
    np.savez_compressed(out, images=crops, masks=masks, names=np.array(names))
    return out


def _centre(mask: np.ndarray, name: str) -> np.ndarray:
    ys, xs = np.nonzero(mask == LABELS.index(name))
    assert len(xs), name
    return np.array([xs.mean(), ys.mean()])


def test_pseudo_labels_put_each_region_where_it_belongs(labelled):
    z = np.load(labelled)
    assert z["images"].shape == (12, 64, 64, 3) and z["masks"].shape == (12, 64, 64)
    for m in z["masks"]:
        c = {n: _centre(m, n) for n in ("eye_l", "eye_r", "brow_l", "brow_r", "nose", "upper_lip",
                                        "lower_lip", "skin")}  # fmt: skip
        assert c["eye_l"][0] > c["eye_r"][0]  # the face's own left is on the image right
        assert c["brow_l"][1] < c["eye_l"][1] and c["brow_r"][1] < c["eye_r"][1]
        assert c["eye_l"][1] < c["nose"][1] < c["upper_lip"][1] < c["lower_lip"][1]
        assert m[0, 0] == UNKNOWN and m[-1, -1] == UNKNOWN  # outside the face: unknown
        assert (m == LABELS.index("skin")).sum() > 0.2 * (m != UNKNOWN).sum()


def test_held_out_real_frames_are_the_last_stretch(labelled):
    train, held = LabelledFaces(labelled, "train"), LabelledFaces(labelled, "heldout")
    assert len(train) + len(held) == 12 and len(held) == 2  # frames with rank >= 80%
    assert held.index.min() > train.index.max()


def test_flips_keep_unknown_pixels_unknown():
    mask = torch.full((1, 8, 8), UNKNOWN)
    mask[0, :, :2] = LABELS.index("eye_l")
    cfg = AugmentConfig(flip_p=1.0)
    _, out = augment(torch.rand(1, 3, 8, 8), mask, cfg, torch.Generator(), flip_map(LABELS))
    assert (out[0, :, -2:] == LABELS.index("eye_r")).all() and (out[0, :, :-2] == UNKNOWN).all()


def test_parser_trains_on_renders_and_real_frames_and_reports_both_mious(
    labelled, tiny_pairs, tmp_path
):
    run = tmp_path / "f"
    sets = [f"data.pairs={tiny_pairs}", f"data.real_labels={labelled}", "data.real_per_batch=2",
            "optim.steps=2", "optim.batch_size=4", "data.workers=0", f"run.dir={run}"]  # fmt: skip
    cmd = [sys.executable, "-m", "ml.train.parser", *sum((["--set", s] for s in sets), [])]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    cmd = [sys.executable, "-m", "ml.eval.parser", "--checkpoint", str(run / "last.pt")]
    cmd += ["--pairs", str(tiny_pairs), "--real-labels", str(labelled)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "IoU (held-out real frames)" in res.stdout
    ev = json.loads((run / "eval.json").read_text())
    assert ev["real_frames"] == 2 and "hair" not in ev["iou_real"]  # never in pseudo-labels
    assert 0 <= ev["iou_real"]["mIoU"] <= 1
