"""The default model's recipe end to end at a tiny size: real renders, real training steps
of parser, generator and regressor, evaluation and export; then a rerun that skips the
finished stages, and a failed stage that the next run resumes from."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from ml.config import dump_toml
from ml.recipe import STAGES, RecipeConfig, RecipeError, commands, run

TINY = {"optim.steps": 2, "optim.batch_size": 4, "run.ckpt_every": 1, "data.workers": 0}


def _config(tmp: Path) -> RecipeConfig:
    cfg = RecipeConfig(work=str(tmp / "work"), runs=str(tmp / "runs"), bundle=str(tmp / "bundle"))
    cfg.ship, cfg.limits = str(tmp / "shipped"), ["tiny test model"]
    cfg.pairs.count, cfg.pairs.eval_count, cfg.pairs.size = 16, 6, 64
    # the five losses on the sample video (the real-face set: tests/test_real_face_set.py)
    cfg.real.split, cfg.real.inputs, cfg.real.step = "", ["tests/media/single_face.mp4"], 12
    cfg.parser = dict(TINY)
    cfg.generator = {**TINY, "model.image_size": 64}
    cfg.warmup = {**TINY, "model.image_size": 64}
    cfg.regressor = {**TINY, "optim.steps": 4, "model.image_size": 64, "loss.supervised": 1.0}
    cfg.regressor["model.roll_in_crop"] = True  # adds the crop_rolls stages
    cfg.regressor["model.backbone"] = True  # as the default's: a bundle it can be recovered from
    return cfg


@pytest.mark.slow  # 4 minutes on 2 cores: every stage of the parser-F recipe, end to end
def test_recipe_runs_every_stage_skips_done_ones_and_resumes_after_a_failure(tmp_path):
    cfg = _config(tmp_path)
    marks = Path(cfg.work) / "stages"
    run(cfg)
    card = json.loads((Path(cfg.bundle) / "model_card.json").read_text())
    assert (Path(cfg.bundle) / "model.onnx").is_file()
    assert card["evaluation"]["step"] == 4 and card["input"]["size"] == 64
    int8 = json.loads((Path(cfg.bundle + "_int8") / "model_card.json").read_text())
    assert int8["quantization"]["int8_bytes"] < int8["quantization"]["fp32_bytes"]
    assert int8["evaluation"]["pairs"] == 6  # measured on the int8 graph itself
    shipped = json.loads((Path(cfg.ship) / "model_card.json").read_text())
    t = shipped["training"]
    assert (t["pairs_count"], t["pairs_eval_count"], t["real_faces_count"]) == (16, 6, 6)
    assert set(t["stage_seconds"]) == set(commands(cfg)) - {"ship"}
    assert shipped["tracking_speed"]["fps"] > 0 and shipped["known_limits"] == cfg.limits
    assert shipped["evaluation"]["pairs"] == 6 and "quantization" in shipped
    assert shipped["roll_in_crop"] is True and {"crop_rolls", "eval_crop_rolls"} <= set(
        t["stage_seconds"]
    )
    assert (Path(cfg.work) / "pairs_eval" / "crop_roll.npy").is_file()
    done = {p.stem: p.stat().st_mtime_ns for p in marks.glob("*.done")}
    assert set(done) == set(commands(cfg))

    run(cfg)  # nothing changed: every stage is skipped
    assert {p.stem: p.stat().st_mtime_ns for p in marks.glob("*.done")} == done

    cfg.regressor["frozen.identity"] = str(tmp_path / "missing_identity.pt")
    with pytest.raises(RecipeError, match="stage regressor failed"):
        run(cfg)
    assert not (marks / "regressor.done").exists()
    assert (marks / "generator.done").stat().st_mtime_ns == done["generator"]

    del cfg.regressor["frozen.identity"]
    run(cfg)  # resumes at the regressor; earlier stages stay done
    assert (marks / "generator.done").stat().st_mtime_ns == done["generator"]
    assert (marks / "export.done").stat().st_mtime_ns > done["export"]

    # a recipe that continues this one: no parser or generator of its own, its warm-up
    # starts from this one's regressor, on its own pairs; this one's stages stay done
    (tmp_path / "first.toml").write_text(dump_toml(cfg))
    done = {p.stem: p.stat().st_mtime_ns for p in marks.glob("*.done")}
    more = _config(tmp_path / "second")
    more.start = str(tmp_path / "first.toml")
    more.pairs.count, more.pairs.seed, more.pairs.au_mode = 8, 2, "prototypes"
    assert run(more)
    assert {p.stem: p.stat().st_mtime_ns for p in marks.glob("*.done")} == done
    stages = {p.stem for p in (Path(more.work) / "stages").glob("*.done")}
    assert stages == set(commands(more)) and not {"parser", "generator"} & stages
    # the warm-up (not the later five-loss stage) starts from the first recipe's regressor
    warm = shlex.split((Path(more.work) / "stages" / "warmup.done").read_text())
    assert f'run.init="{Path(cfg.runs) / "regressor" / "last.pt"}"' in warm
    regressor = shlex.split((Path(more.work) / "stages" / "regressor.done").read_text())
    assert not any(a.startswith("run.init=") for a in regressor)
    t = json.loads((Path(more.ship) / "model_card.json").read_text())["training"]
    assert t["pairs_count"] == 8 and t["started_from"]["pairs_count"] == 16
    assert t["total_hours"] == round(
        sum(t["stage_seconds"].values()) / 3600 + t["started_from"]["total_hours"], 2
    )
    assert not run(more)  # all done, the first recipe's stages too

    # a recipe that goes on from the first one's shipped bundle (its checkpoints gone): the
    # warm-up starts from the recovered weights, statistics frozen in every stage
    shutil.rmtree(cfg.runs)
    third = _config(tmp_path / "third")
    third.init_bundle, third.pairs.count = cfg.ship, 8
    third.ship = cfg.ship  # and ships where it started from
    first_card = json.loads((Path(cfg.ship) / "model_card.json").read_text())
    assert run(third)
    stages = {p.stem for p in (Path(third.work) / "stages").glob("*.done")}
    assert "recover" in stages and stages == set(commands(third))
    warm = shlex.split((Path(third.work) / "stages" / "warmup.done").read_text())
    assert f'run.init="{Path(third.work) / "from_bundle" / "regressor.pt"}"' in warm
    for stage in ("warmup", "regressor"):
        line = shlex.split((Path(third.work) / "stages" / f"{stage}.done").read_text())
        assert "optim.freeze_bn_stats=true" in line, stage
    t = json.loads((Path(third.ship) / "model_card.json").read_text())["training"]
    assert t["started_from"] == first_card["training"] and t["pairs_count"] == 8
    # a rerun after a change to the parser trains again, but still from the weights it
    # recovered first, not from the model it shipped over them
    recovered = (Path(third.work) / "from_bundle" / "regressor.pt").stat().st_mtime_ns
    third.parser = {**TINY, "optim.steps": 3}
    assert run(third)
    assert (Path(third.work) / "from_bundle" / "regressor.pt").stat().st_mtime_ns == recovered
    t = json.loads((Path(third.ship) / "model_card.json").read_text())["training"]
    assert t["started_from"] == first_card["training"] and t["parser_steps"] == 3


def test_a_recipe_continues_a_recipe_or_a_bundle_not_both(tmp_path):
    cfg = _config(tmp_path)
    cfg.init_bundle, cfg.start = str(tmp_path / "copy"), str(tmp_path / "first.toml")
    with pytest.raises(RecipeError, match="start and init_bundle"):
        commands(cfg)


def test_a_recipe_cannot_continue_itself_or_a_missing_one(tmp_path):
    cfg = _config(tmp_path)
    cfg.start = str(tmp_path / "missing.toml")
    with pytest.raises(RecipeError, match="start: recipe config .*missing.toml does not exist"):
        commands(cfg)
    (tmp_path / "same.toml").write_text(dump_toml(_config(tmp_path)))
    cfg.start = str(tmp_path / "same.toml")
    with pytest.raises(RecipeError, match="has the same runs folder"):
        commands(cfg)


def test_crop_roll_stages_come_only_with_roll_in_crop(tmp_path):
    cfg = _config(tmp_path)
    names = list(commands(cfg))
    assert names.index("generator") < names.index("crop_rolls") < names.index("warmup")
    del cfg.regressor["model.roll_in_crop"]
    assert not {"crop_rolls", "eval_crop_rolls"} & set(commands(cfg))


def test_a_landmark_recipe_trains_r_on_the_landmark_network_and_evaluates_on_real_video(tmp_path):
    cfg = _config(tmp_path)
    cfg.f = "landmarks"
    cfg.landmark.group_inputs = {"pose": ["aligned"], "gaze": ["aligned"],
                                 "au": ["aligned", "parts"], "identity": ["aligned"]}  # fmt: skip
    cmds = commands(cfg)
    assert list(cmds) == [
        "pairs", "eval_pairs", "crop_rolls", "eval_crop_rolls", "landmark_regressor", "export",
        "evaluate_bundle", "evaluate_real", "quantize", "evaluate_int8", "evaluate_real_int8",
        "ship",
    ]  # fmt: skip
    train = shlex.join(cmds["landmark_regressor"])
    assert "-m ml.train.landmark_regressor" in train and "--depth 0" in train
    assert "--group-inputs pose=aligned gaze=aligned au=aligned,parts identity=aligned" in train
    real = [str(tmp_path / "runs" / "eval_real_bundle.json")]
    assert cmds["evaluate_real"][2:] == ["ml.eval.real", "--bundle", cfg.bundle, "--write-card",
                                         "--out", *real]  # fmt: skip
    assert cmds["ship"][cmds["ship"].index("--bundle") + 1] == f"{cfg.bundle}_int8"
    # every stage is a command the project has, in its own stage list
    assert set(cmds) <= set(STAGES)
    cfg.quantize = False
    assert list(commands(cfg))[-3:] == ["evaluate_bundle", "evaluate_real", "ship"]
    cfg.f = "bisenet"
    with pytest.raises(RecipeError, match="f = 'bisenet': one of"):
        commands(cfg)
    cfg.f, cfg.init_bundle = "landmarks", str(tmp_path / "bundle")
    with pytest.raises(RecipeError, match="trains R from nothing"):
        commands(cfg)


def test_a_landmark_recipe_with_the_five_losses_exports_their_regressor(tmp_path):
    cfg = _config(tmp_path)
    cfg.f, cfg.quantize = "landmarks", False
    assert "five_losses" not in commands(cfg)  # off by default: the warm-up's R is exported
    cfg.five_losses.steps, cfg.five_losses.weights = 500, {"content": 2.0}
    cfg.real.clips = ["franck"]
    cmds = commands(cfg)
    names = list(cmds)
    assert names.index("landmark_regressor") < names.index("feature_generator")
    assert names.index("feature_generator") < names.index("five_losses") < names.index("export")
    five = cmds["five_losses"]
    assert five[2] == "ml.train.landmark_five_losses" and "--content" in five
    assert five[five.index("--clips") + 1] == "franck" and five[five.index("--steps") + 1] == "500"
    export = cmds["export"]
    assert export[export.index("--regressor") + 1] == str(tmp_path / "runs" / "five_losses" /
                                                          "last.pt")  # fmt: skip
    assert set(cmds) <= set(STAGES)
    cfg.five_losses.weights = {"contnet": 1.0}
    with pytest.raises(RecipeError, match=r"five_losses.weights \['contnet'\]"):
        commands(cfg)
