"""Parser training and evaluation on real rendered pairs; augmentation keeps masks right."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from ml.data.augment import AugmentConfig, appearance, augment, flip_map
from rigs import load_spec


def test_flip_swaps_left_and_right_labels():
    spec = load_spec()
    fm = flip_map(spec.labels)
    lab = list(spec.labels)
    assert lab[int(fm[lab.index("eye_l")])] == "eye_r"
    assert lab[int(fm[lab.index("brow_r")])] == "brow_l"
    assert int(fm[lab.index("nose")]) == lab.index("nose")
    masks = torch.zeros(1, 4, 4, dtype=torch.long)
    masks[0, :, 0] = lab.index("eye_l")  # image-left column
    images = torch.rand(1, 3, 4, 4)
    cfg = AugmentConfig(flip_p=1.0, blur_p=0.0, gray_p=0.0, noise=0.0)
    x, m = augment(images, masks, cfg, torch.Generator().manual_seed(0), fm)
    assert (m[0, :, 3] == lab.index("eye_r")).all() and (m[0, :, 0] == 0).all()
    assert x.shape == images.shape and x.min() >= 0 and x.max() <= 1


def test_augmentation_is_seeded():
    spec = load_spec()
    images, masks = torch.rand(4, 3, 16, 16), torch.zeros(4, 16, 16, dtype=torch.long)
    runs = [
        augment(
            images, masks, AugmentConfig(), torch.Generator().manual_seed(5), flip_map(spec.labels)
        )[0]
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], images)


def test_appearance_augmentation_changes_colours_but_never_flips():
    images = torch.full((8, 3, 16, 16), 0.2)
    images[..., :4] = 0.9  # a bright image-left band
    cfg = AugmentConfig(flip_p=1.0, noise=0.0, blur_p=0.0)  # flip_p is not appearance's
    x = appearance(images, cfg, torch.Generator().manual_seed(3))
    assert not torch.equal(x, images)
    assert (x[..., :4].mean(dim=(1, 2, 3)) > x[..., 8:].mean(dim=(1, 2, 3))).all()


def test_tiny_parser_training_and_evaluation(tiny_pairs, tmp_path):
    run = tmp_path / "parser"
    cmd = [sys.executable, "-m", "ml.train.parser"]
    for s in (
        f"data.pairs={tiny_pairs}",
        f"run.dir={run}",
        "optim.steps=25",
        "optim.batch_size=4",
        "data.workers=0",
        "data.holdout_every=4",
        "run.sample_every=25",
    ):
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["last_loss_mean"] < 0.7 * summary["first_loss_mean"]
    assert (run / "samples" / "step_0000025.png").exists()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml.eval.parser",
            "--checkpoint",
            str(run / "last.pt"),
            "--pairs",
            str(tiny_pairs),
            "--holdout-every",
            "4",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    table = json.loads((run / "eval.json").read_text())["iou_renders"]
    assert 0.0 <= table["mIoU"] <= 1.0 and table["background"] > 0.5
    assert "| mIoU |" in res.stdout


def test_bad_config_is_one_clear_line(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "ml.train.parser", "--set", "optim.nope=1"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "unknown key" in res.stderr and "Traceback" not in res.stderr
