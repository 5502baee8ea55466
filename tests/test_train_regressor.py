"""Unsupervised regressor training, tiny: real video frames through frozen F and G."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR
from ml.data.augment import mirror_params
from ml.data.real_faces import RealFaces
from ml.nets.identity import fetch as fetch_identity
from ml.nets.mtcnn import fetch as fetch_mtcnn
from ml.train.checkpoint import load_checkpoint
from rigs import load_spec
from tests.conftest import MEDIA

# a tiny regressor run: small heads, 4-image batches, every real frame used for training
TINY_R = [
    "model.image_size=64",
    "model.conv_channels=32",
    "model.hidden=64",
    "optim.batch_size=4",
    "data.workers=0",
    "data.holdout_every=100",
]


def _run(module: str, *sets: str, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", module, *(extra or [])]
    for s in sets:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def frozen(tiny_pairs, tmp_path_factory) -> dict[str, Path]:
    """A 2-step generator and parser at 64 px, and aligned real faces from the sample video."""
    root = tmp_path_factory.mktemp("frozen")
    common = [f"data.pairs={tiny_pairs}", "optim.steps=2", "optim.batch_size=4", "data.workers=0"]
    _run(
        "ml.train.generator",
        *common,
        f"run.dir={root / 'g'}",
        "model.image_size=64",
        "model.max_channels=32",
        "loss.perceptual=0",
    )
    _run("ml.train.parser", *common, f"run.dir={root / 'f'}")
    fetch_mtcnn(DEFAULT_MODEL_DIR)
    fetch_identity(Path("data/weights/identity"))  # the identity loss's frozen network
    _run(
        "ml.data.real_faces",
        extra=[
            "--inputs",
            str(MEDIA / "single_face.mp4"),
            "--out",
            str(root / "real.npz"),
            "--size",
            "64",
            "--step",
            "6",
        ],
    )
    return {"g": root / "g" / "last.pt", "f": root / "f" / "last.pt", "real": root / "real.npz"}


def test_real_faces_are_aligned_crops(frozen):
    data = RealFaces(frozen["real"])
    assert len(data) == 12  # every 6th of 72 frames, one face in each
    assert data[0]["image"].shape == (3, 64, 64)


def test_tiny_unsupervised_run_trains_only_the_regressor(frozen, tmp_path):
    run = tmp_path / "r"
    g_before = torch.load(frozen["g"], weights_only=False)["model"]
    _run(
        "ml.train.regressor",
        f"data.real={frozen['real']}",
        f"frozen.generator={frozen['g']}",
        f"frozen.parser={frozen['f']}",
        "model.image_size=64",
        "model.conv_channels=32",
        "model.hidden=64",
        "optim.steps=6",
        "optim.batch_size=4",
        "data.workers=0",
        f"run.dir={run}",
        "data.holdout_every=100",
        "data.flip_real=0.5",  # as the recipe's
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 6 and np.isfinite(summary["final_loss"])
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"content", "identity", "parameter", "loopback", "adversarial"} <= rows[-1].keys()
    model, ckpt = load_checkpoint(run / "last.pt", load_spec())
    assert ckpt["kind"] == "regressor"
    g_after = torch.load(frozen["g"], weights_only=False)["model"]
    assert all(torch.equal(g_before[k], g_after[k]) for k in g_before)  # G stayed frozen


def test_evaluation_table_in_the_paper_layout(frozen, tiny_pairs, tmp_path):
    run = tmp_path / "r"
    _run(
        "ml.train.regressor",
        f"data.real={frozen['real']}",
        f"frozen.generator={frozen['g']}",
        f"frozen.parser={frozen['f']}",
        "loss.identity=0",
        "model.image_size=64",
        "model.conv_channels=32",
        "model.hidden=64",
        "optim.steps=2",
        "optim.batch_size=4",
        "data.workers=0",
        f"run.dir={run}",
        "data.holdout_every=100",
    )
    res = _run(
        "ml.eval.regressor",
        extra=[
            "--regressor",
            str(run / "last.pt"),
            "--parser",
            str(frozen["f"]),
            "--pairs",
            str(tiny_pairs),
        ],
    )
    assert "| ICC |" in res.stdout and "Head pose error" in res.stdout
    result = json.loads((run / "eval.json").read_text())
    assert len(result["aus"]) == 23 and result["pairs"] == 24  # 22 FACS AUs + average
    assert all(np.isfinite(v) for v in result["pose_deg"].values())

    bundle = tmp_path / "bundle.aurt"
    _run(
        "ml.export.bundle",
        extra=[
            "--regressor",
            str(run / "last.pt"),
            "--parser",
            str(frozen["f"]),
            "--out",
            str(bundle),
        ],
    )
    card = json.loads((bundle / "model_card.json").read_text())
    assert card["evaluation"]["pairs"] == 24 and "[model]" in card["training_config"]
    assert card["onnx_max_abs_diff"] < 1e-3 and len(card["input"]["alignment_template"]) == 5


def test_loss_switches_skip_terms_and_the_warm_up_needs_no_generator(frozen, tiny_pairs, tmp_path):
    common = [
        f"data.real={frozen['real']}",
        f"data.pairs={tiny_pairs}",
        f"frozen.parser={frozen['f']}",
        f"frozen.generator={tmp_path / 'no_generator.pt'}",  # must not be opened
        *TINY_R,
    ]
    off = [f"loss.{k}=0" for k in ("content", "identity", "loopback", "adversarial")]
    run = tmp_path / "warm"
    groups = "loss.supervised_groups={ au = 4.0, pose = 1.0 }"  # weighted by group
    # flipped pairs with mirrored parameters, and a cosine learning rate, as the recipe's
    _run("ml.train.regressor", *common, *off, "loss.parameter=0", "loss.supervised=1", groups,
         "optim.steps=5", "augment.flip_p=0.5", "optim.schedule=cosine", "optim.lr=0.001",
         "optim.lr_floor=0.1", "optim.decay_start=1", "run.log_every=1",
         f"run.dir={run}")  # fmt: skip
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    # step k (1-based in the log) trained at lr_at(k - 1): 1e-3 for one step, then down toward 1e-4
    expected = [1e-3 * (0.1 + 0.9 * (1 + np.cos(np.pi * max(k - 1, 0) / 4)) / 2) for k in range(5)]
    np.testing.assert_allclose([r["lr"] for r in rows], expected, rtol=1e-6)
    assert set(rows[-1]) & {"content", "identity", "parameter", "loopback", "adversarial"} == set()
    assert "supervised" in rows[-1]

    run = tmp_path / "param_only"  # one unsupervised term on, the rest switched off
    _run("ml.train.regressor", *common, *off, "optim.steps=2", f"run.dir={run}")
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "parameter" in rows[-1] and "content" not in rows[-1]

    cmd = [sys.executable, "-m", "ml.train.regressor", *sum((["--set", s] for s in common), [])]
    cmd += sum((["--set", s] for s in [*off, "loss.parameter=0", f"run.dir={tmp_path / 'x'}"]), [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "every loss weight is 0" in res.stderr

    bad = [*common, "loss.supervised=1", "optim.schedule=linear", f"run.dir={tmp_path / 'y'}"]
    cmd = [sys.executable, "-m", "ml.train.regressor", *sum((["--set", s] for s in bad), [])]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "optim.schedule must be one of constant, cosine" in res.stderr
    bad[-2] = "optim.decay_start=20000"  # at or past optim.steps: the decay would never run
    res = subprocess.run(
        cmd[:3] + sum((["--set", s] for s in bad), []), capture_output=True, text=True
    )
    assert res.returncode == 2 and "optim.decay_start must be in [0, optim.steps" in res.stderr

    bad = [*common, "loss.supervised=1", "loss.supervised_groups={ aus = 1.0 }"]
    cmd = [sys.executable, "-m", "ml.train.regressor", *sum((["--set", s] for s in bad), [])]
    res = subprocess.run(
        cmd + ["--set", f"run.dir={tmp_path / 'z'}"], capture_output=True, text=True
    )
    assert res.returncode == 2 and "loss.supervised_groups: unknown group 'aus'" in res.stderr
    assert not (tmp_path / "z").exists()  # refused before anything is written


def test_flipped_pairs_get_mirrored_parameters():
    spec = load_spec()
    images = torch.rand(3, 3, 8, 8)
    params = torch.from_numpy(spec.defaults()).repeat(3, 1)
    params[:, spec.param("AU12_L").index] = torch.tensor([0.2, 0.5, 0.9])
    params[:, spec.param("head_yaw").index] = 20.0
    params[:, spec.param("id_face_width").index] = 0.7
    g = torch.Generator().manual_seed(0)
    out_images, out = mirror_params(images, params, spec, 1.0, g)
    torch.testing.assert_close(out_images, images.flip(-1))
    torch.testing.assert_close(out[:, spec.param("AU12_R").index], torch.tensor([0.2, 0.5, 0.9]))
    assert (out[:, spec.param("AU12_L").index] == 0).all()
    assert (out[:, spec.param("head_yaw").index] == -20.0).all()
    assert (out[:, spec.param("id_face_width").index] == 0.7).all()
    twice = mirror_params(out_images, out, spec, 1.0, g)
    torch.testing.assert_close(twice[0], images)
    torch.testing.assert_close(twice[1], params)
    kept = mirror_params(images, params, spec, 0.0, g)  # flip_p 0: nothing changes
    torch.testing.assert_close(kept[1], params)
    # flip_p 0.5 flips some of a batch, each face with its own parameters
    many_images = torch.rand(64, 3, 8, 8)
    batch = params[:1].repeat(64, 1)
    flipped_images, flipped = mirror_params(many_images, batch, spec, 0.5, g)
    was_flipped = flipped[:, spec.param("head_yaw").index] < 0
    assert 10 < int(was_flipped.sum()) < 54
    torch.testing.assert_close(flipped_images[was_flipped], many_images[was_flipped].flip(-1))
    torch.testing.assert_close(flipped_images[~was_flipped], many_images[~was_flipped])


def test_resume_restores_the_discriminator_exactly(frozen, tmp_path):
    common = [
        f"data.real={frozen['real']}",
        f"frozen.generator={frozen['g']}",
        f"frozen.parser={frozen['f']}",
        "loss.identity=0",
        *TINY_R,
        "run.ckpt_every=1",
    ]
    _run("ml.train.regressor", *common, "optim.steps=4", f"run.dir={tmp_path / 'straight'}")
    _run("ml.train.regressor", *common, "optim.steps=2", f"run.dir={tmp_path / 'resumed'}")
    _run("ml.train.regressor", *common, "optim.steps=4", f"run.dir={tmp_path / 'resumed'}")
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for part in ("discriminator",):
        for k, v in a["extra"][part].items():
            assert torch.allclose(v, b["extra"][part][k], atol=1e-6), (part, k)
    for k, v in a["model"].items():
        assert torch.allclose(v.float(), b["model"][k].float(), atol=1e-5), k


def test_ablation_command_trains_each_variant_and_prints_the_table(frozen, tiny_pairs, tmp_path):
    from ml.eval import ablation

    sets = [
        f"data.real={frozen['real']}",
        f"data.pairs={tiny_pairs}",
        f"frozen.generator={frozen['g']}",
        f"frozen.parser={frozen['f']}",
        "loss.identity=0",
        *TINY_R,
    ]
    only = ["full (five losses)", "without loopback", "supervised only"]
    argv = ["--steps", "2", "--eval-pairs", str(tiny_pairs), "--out", str(tmp_path)]
    argv += [a for s in sets for a in ("--set", s)] + ["--only", *only]
    assert ablation.main(argv) == 0
    md = (tmp_path / "ablation.md").read_text()
    assert all(f"| {name} |" in md for name in only)
    log = (tmp_path / "without_loopback" / "log.jsonl").read_text().splitlines()
    assert "loopback" not in json.loads(log[-1]) and "content" in json.loads(log[-1])


def test_own_backbone_starts_from_f_trains_with_r_and_is_what_the_bundle_runs(
    frozen, tiny_pairs, tmp_path
):
    from ml.nets.regressor import FaceToParams, Regressor

    spec = load_spec()
    run = tmp_path / "own"
    common = [
        f"data.real={frozen['real']}",
        f"data.pairs={tiny_pairs}",
        f"frozen.generator={frozen['g']}",
        f"frozen.parser={frozen['f']}",
        "model.backbone=true",
        "loss.supervised=1",  # the five losses and the supervision both reach the backbone
        *TINY_R,
        f"run.dir={run}",
    ]
    f_before = torch.load(frozen["f"], weights_only=False)["model"]
    _run("ml.train.regressor", *common, "optim.steps=3")
    f_after = torch.load(frozen["f"], weights_only=False)["model"]
    assert all(torch.equal(f_before[k], f_after[k]) for k in f_before)  # F stayed frozen
    model, ckpt = load_checkpoint(run / "last.pt", spec)
    assert isinstance(model, Regressor) and model.backbone is not None
    own = model.backbone.state_dict()
    moved = [k for k in f_before if k.endswith("weight") and not torch.equal(own[k], f_before[k])]
    assert moved  # the backbone trained ...
    for k in moved:  # ... from F's weights: 3 steps move it a little, not to a new init
        rel = (own[k] - f_before[k]).norm() / f_before[k].norm().clamp_min(1e-8)
        assert rel < 0.2, (k, float(rel))

    _run("ml.train.regressor", *common, "optim.steps=3")  # resumed at its end: kept, not reset
    again, _ = load_checkpoint(run / "last.pt", spec)
    assert isinstance(again, Regressor) and again.backbone is not None
    assert all(torch.equal(v, again.backbone.state_dict()[k]) for k, v in own.items())

    bundle = tmp_path / "own.aurt"
    _run("ml.export.bundle", extra=["--regressor", str(run / "last.pt")]
         + ["--parser", str(frozen["f"]), "--out", str(bundle)])  # fmt: skip
    from au_retarget_addon.core.bundle import ModelBundle
    from ml.data.pairs_dataset import PairsDataset

    items = [PairsDataset(tiny_pairs)[i] for i in range(4)]
    crops = np.stack([(it["image"].permute(1, 2, 0).numpy() * 255).round() for it in items])
    crops = crops.astype(np.uint8)
    got = ModelBundle(bundle, spec.hash(), device="cpu").run(crops)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ref = model.eval()(x)["params"].numpy()
    cont = [p.index for p in spec.params if not p.discrete]
    assert np.abs(got[:, cont] - ref[:, cont]).max() < 1e-3
    assert isinstance(FaceToParams(torch.nn.Identity(), model).parser, type(model.backbone))


def test_frozen_bn_stats_keep_the_warm_up_statistics_while_the_weights_train(
    frozen, tiny_pairs, tmp_path
):
    spec = load_spec()
    run = tmp_path / "bn"
    common = [
        f"data.real={frozen['real']}",
        f"data.pairs={tiny_pairs}",
        f"frozen.generator={frozen['g']}",
        f"frozen.parser={frozen['f']}",
        "model.backbone=true",
        "loss.supervised=1",
        *TINY_R,
        f"run.dir={run}",
    ]
    off = [f"loss.{k}=0" for k in ("content", "identity", "parameter", "loopback", "adversarial")]
    _run("ml.train.regressor", *common, *off, "optim.steps=2")  # the warm-up: stats update
    warm = torch.load(run / "last.pt", weights_only=False)["model"]
    f = torch.load(frozen["f"], weights_only=False)["model"]
    stats = [k for k in warm if k.endswith(("running_mean", "running_var"))]
    own = [k for k in stats if k.startswith("backbone.")]  # R's copy of F: F's stats at step 0
    assert any(not torch.equal(warm[k], f[k.removeprefix("backbone.")]) for k in own)

    # the five losses on real frames and generator renders, statistics frozen
    _run("ml.train.regressor", *common, "optim.steps=4", "optim.freeze_bn_stats=true")
    tuned = torch.load(run / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(warm[k], tuned[k]) for k in stats)
    weights = [k for k in warm if k.endswith("weight")]
    assert any(not torch.equal(warm[k], tuned[k]) for k in weights)  # the rest trained
    _, ckpt = load_checkpoint(run / "last.pt", spec)
    assert ckpt["step"] == 4


def _warm_up_sets(frozen: dict[str, Path], pairs: Path) -> list[str]:
    """A tiny supervised warm-up of R with its own backbone (no generator needed)."""
    return [
        f"data.real={frozen['real']}",
        f"data.pairs={pairs}",
        f"frozen.parser={frozen['f']}",
        "model.backbone=true",
        "loss.supervised=1",
        *(f"loss.{k}=0" for k in ("content", "identity", "parameter", "loopback", "adversarial")),
        *TINY_R,
    ]


def test_init_starts_a_new_run_from_another_runs_weights(frozen, tiny_pairs, tmp_path):
    common = _warm_up_sets(frozen, tiny_pairs)
    _run("ml.train.regressor", *common, "optim.steps=3", f"run.dir={tmp_path / 'a'}")
    src = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    # lr 0: the new run's weights are the source's (its backbone too, not F's), at step 1
    _run("ml.train.regressor", *common, "optim.steps=1", "optim.lr=0",
         f"run.init={tmp_path / 'a' / 'last.pt'}", f"run.dir={tmp_path / 'b'}")  # fmt: skip
    new = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert new["step"] == 1
    weights = [k for k in src["model"] if k.endswith(("weight", "bias"))]
    assert any(k.startswith("backbone.") for k in weights)
    assert all(torch.equal(src["model"][k], new["model"][k]) for k in weights)

    cmd = [sys.executable, "-m", "ml.train.regressor"]
    for s in [*common, "model.hidden=32", f"run.init={tmp_path / 'a' / 'last.pt'}",
              f"run.dir={tmp_path / 'c'}"]:  # fmt: skip
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2
    assert f"run.init: {tmp_path / 'a' / 'last.pt'} has model config" in res.stderr


@pytest.fixture(scope="module")
def rolled_pairs(tiny_pairs, tmp_path_factory) -> Path:
    """The tiny pairs with their crop rolls (ml/blender/crop_rolls.py, real Blender)."""
    root = tmp_path_factory.mktemp("rolled") / "pairs"
    shutil.copytree(tiny_pairs, root)
    script = Path(__file__).resolve().parents[1] / "ml" / "blender" / "crop_rolls.py"
    res = subprocess.run(
        [sys.executable, str(script), "--", "--pairs", str(root)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return root


def test_roll_in_crop_trains_on_the_roll_left_in_the_crop_and_adds_it_back(
    frozen, tiny_pairs, rolled_pairs, tmp_path
):
    from au_retarget_addon.core.bundle import BundleError, ModelBundle
    from ml.config import load_config
    from ml.data.pairs_layout import PairsError, list_pairs, read_crop_rolls, read_pair
    from ml.device import Runtime
    from ml.export.bundle import export_from_checkpoints
    from ml.train.regressor import RegressorTrainer, TrainRegressorConfig

    off = [f"loss.{k}=0" for k in ("content", "identity", "parameter", "loopback", "adversarial")]
    sets = [f"data.real={frozen['real']}", f"frozen.parser={frozen['f']}", *TINY_R, *off]
    sets += ["loss.supervised=1", "model.roll_in_crop=true", "optim.steps=2"]
    cpu = Runtime(torch.device("cpu"))
    cfg = load_config(TrainRegressorConfig, None, [*sets, f"data.pairs={tiny_pairs}"])
    cfg.run.dir = str(tmp_path / "refused")
    with pytest.raises(PairsError, match=r"crop_roll\.npy is missing; write it with"):
        RegressorTrainer(cfg, cpu)  # refused before the first step

    # the head_roll target is the render's roll minus its crop roll; the rest is unchanged
    cfg = load_config(TrainRegressorConfig, None, [*sets, f"data.pairs={rolled_pairs}"])
    cfg.run.dir = str(tmp_path / "peek")
    assert cfg.model.roll_in_crop
    rolls, roll = read_crop_rolls(rolled_pairs), load_spec().param("head_roll").index
    stored = {}
    for stem in list_pairs(rolled_pairs):
        p = read_pair(stem).params
        stored[tuple(np.delete(p, roll).round(4))] = (p, rolls[int(stem.name)])
    _, targets = next(RegressorTrainer(cfg, cpu).pairs)
    for t in targets.numpy():
        p, r = stored[tuple(np.delete(t, roll).round(4))]
        assert t[roll] == pytest.approx(p[roll] - r, abs=1e-4) and abs(r) > 0.01

    run = tmp_path / "r"
    _run("ml.train.regressor", *sets, f"data.pairs={rolled_pairs}", f"run.dir={run}")
    bundle = export_from_checkpoints(run / "last.pt", frozen["f"], tmp_path / "bundle")
    b = ModelBundle(bundle, load_spec().hash(), device="cpu")
    assert b.roll_in_crop and b.card["roll_in_crop"] is True
    items = [read_pair(s) for s in list_pairs(rolled_pairs)[:6]]
    crops = np.stack([it.image for it in items])
    with pytest.raises(BundleError, match="relative to the aligned crop"):
        b.run(crops)
    r = np.array([-40.0, -5.0, 0.0, 3.0, 12.0, 40.0])
    graph, out = b.run(crops, crop_rolls=np.zeros(6)), b.run(crops, crop_rolls=r)
    np.testing.assert_allclose(out[:, roll], np.clip(graph[:, roll] + r, -30, 30), atol=1e-4)
    np.testing.assert_array_equal(np.delete(out, roll, 1), np.delete(graph, roll, 1))

    # evaluation adds each pair's crop roll back, and needs the file to
    cmd = [sys.executable, "-m", "ml.eval.regressor", "--bundle", str(bundle), "--pairs"]
    res = subprocess.run(cmd + [str(rolled_pairs)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    res = subprocess.run(cmd + [str(tiny_pairs)], capture_output=True, text=True)
    assert res.returncode == 2 and "crop_roll.npy is missing" in res.stderr


def test_a_bundle_gives_back_its_regressor_and_training_goes_on_from_it(
    frozen, tiny_pairs, tmp_path
):
    # a trained regressor, exported (BatchNorm folded into the convolutions), recovered from
    # the ONNX graph alone: the same function, and a run can start from it
    from ml.nets.regressor import FaceToParams, Regressor

    spec = load_spec()
    common = _warm_up_sets(frozen, tiny_pairs)
    _run("ml.train.regressor", *common, "optim.steps=3", f"run.dir={tmp_path / 'a'}")
    trained, _ = load_checkpoint(tmp_path / "a" / "last.pt", spec)
    stats = trained.state_dict()
    assert any(stats[k].abs().max() > 0 for k in stats if k.endswith("running_mean"))
    _run("ml.export.bundle", extra=["--regressor", str(tmp_path / "a" / "last.pt"), "--parser",
                             str(frozen["f"]), "--out", str(tmp_path / "bundle")])  # fmt: skip
    _run("ml.export.bundle_weights", extra=["--bundle", str(tmp_path / "bundle"), "--out",
                                     str(tmp_path / "back")])  # fmt: skip
    back, ckpt = load_checkpoint(tmp_path / "back" / "regressor.pt", spec)
    assert isinstance(back, Regressor) and isinstance(trained, Regressor)
    assert ckpt["step"] == 3 and ckpt["extra"]["bn_folded"]
    # the segmentation heads that no parameter needs are not in the graph, and say so
    assert ckpt["extra"]["not_in_graph"]
    assert all(".conv_out16." in k or ".conv_out32." in k for k in ckpt["extra"]["not_in_graph"])

    real = RealFaces(frozen["real"])
    x = torch.stack([real[i]["image"] for i in range(min(6, len(real)))])
    with torch.no_grad():
        want = FaceToParams(torch.nn.Identity(), trained.eval())(x)
        got = FaceToParams(torch.nn.Identity(), back.eval())(x)
    cont = [p.index for p in spec.params if not p.discrete]
    assert (got[:, cont] - want[:, cont]).abs().max() < 1e-3

    # training from it needs the statistics frozen (its BatchNorm layers are identities)
    init = [f"run.init={tmp_path / 'back' / 'regressor.pt'}", "optim.steps=1"]
    cmd = [sys.executable, "-m", "ml.train.regressor"]
    for s in [*common, *init, f"run.dir={tmp_path / 'c'}"]:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "optim.freeze_bn_stats = true" in res.stderr
    _run("ml.train.regressor", *common, *init, "optim.freeze_bn_stats=true", "optim.lr=0",
         f"run.dir={tmp_path / 'd'}")  # fmt: skip
    new, _ = load_checkpoint(tmp_path / "d" / "last.pt", spec)
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in back.state_dict().items())
    # ... and so does every later stage of that run (the five-loss stage resumes it)
    cmd = [sys.executable, "-m", "ml.train.regressor"]
    for s in [*common, "optim.steps=2", f"run.dir={tmp_path / 'd'}"]:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "optim.freeze_bn_stats = true" in res.stderr
