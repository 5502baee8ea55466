"""The default model's recipe: every stage from rendered pairs to the exported bundle, as
one command that can be killed and rerun at any point.

    python -m ml.recipe --config ml/configs/recipe.toml          # the default (landmark F)
    python -m ml.recipe --config ml/configs/recipe_parser.toml   # F a parser trained on renders
    python -m ml.recipe --config ml/configs/recipe_full.toml     # that at paper sizes, CUDA GPU
    python -m ml.recipe --config ml/configs/recipe.toml --only export evaluate_bundle

`f` chooses F, and with it the stages: "landmarks" renders pairs, trains R's sub-networks on
the frozen landmark network's cached features, exports, evaluates on held-out renders and
on the real-face set's held-out people, quantises and ships; "parser" trains the face
parser, the generator and R (a supervised warm-up, then the five losses on real frames).

Each stage is the project's own command run as a subprocess, so a stage here is exactly
what a user would type. A stage that finished leaves `<work>/stages/<name>.done` holding its
command; the next run skips it unless its command changed or an earlier stage ran again.
Training stages resume from their last checkpoint, so raising a stage's `optim.steps`
continues that training; a stage already at its step count finishes at once. Killing the
recipe loses at most the stage's work since its last checkpoint; renders resume pair by pair.

A recipe may continue another (`start = "ml/configs/experiments/recipe_facs.toml"`): that
recipe runs first (its finished stages skip as usual), then this one, which trains no parser or
generator (it uses the first one's) and starts its warm-up from the first one's regressor
(`run.init`), on its own pairs. Or it goes on from a bundle (`init_bundle`, e.g. the
shipped default): a first `recover` stage rebuilds the regressor from the bundle's graph
(ml/export/bundle_weights.py) and the warm-up starts from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.config import _toml_value, dump_toml, load_config
from ml.errors import MLError, exit_on_error

log = logging.getLogger(__name__)


class RecipeError(MLError, RuntimeError):
    """A recipe stage failed; the message names the stage and its command."""


@dataclass
class PairsStage:
    count: int = 4000  # training pairs
    eval_count: int = 300  # held-out pairs, own seed: identities unseen in training
    size: int = 128
    seed: int = 1
    eval_seed: int = 90001
    au_mode: str = "sparse"  # ml/data/sampling.py: uniform, sparse, facs or prototypes
    eval_au_mode: str = ""  # the held-out pairs' AU mode; "" = au_mode
    samples: int = 2


@dataclass
class RealStage:
    # the five losses' real frames: this split of the real-face set (ml/data/real_face_set.py;
    # the held-out people are never trained on), every `step`-th crop of each person's
    # track; "" = the frames of `inputs` instead
    split: str = "train"
    clips: list[str] = field(default_factory=list)  # only these clips of the set; [] = all
    # folders or files of video and images: MediaPipe pseudo-labels for the parser stage
    inputs: list[str] = field(default_factory=lambda: ["tests/media"])
    step: int = 1


@dataclass
class LandmarkStage:
    # R on the landmark network's F (f = "landmarks"): ml.train.landmark_regressor's options
    model: str = "468"  # MediaPipe network: "468" (192 px) or "478" (256 px, irises)
    inputs: list[str] = field(default_factory=lambda: ["aligned", "parts"])
    # one sub-network per group reading these of `inputs`; {} = one network for all
    group_inputs: dict[str, list[str]] = field(default_factory=dict)
    depth: int = 0  # hidden layers (0: each sub-network is a linear map)
    width: int = 512
    steps: int = 6000
    lr: float = 1e-3


@dataclass
class FiveLossStage:
    # the five losses on the real-face set's training people after the warm-up (f =
    # "landmarks"; ml/train/landmark_five_losses.py), through the generator as F sees it
    # (ml/train/feature_generator.py); steps = 0: off, the warm-up's R is exported
    steps: int = 0
    lr: float = 1e-4
    # loss weights by name (content, identity, parameter, loopback, adversarial, supervised,
    # alpha, beta, lambda_le); {} = the command's defaults, the paper's
    weights: dict[str, float] = field(default_factory=dict)
    generator_steps: int = 6000
    generator_width: int = 512
    generator_depth: int = 3


F_CHOICES = ("parser", "landmarks")


@dataclass
class RecipeConfig:
    work: str = "data/recipe"  # pairs, real-face cache, stage markers
    # F: "parser" (the face parser trained here on renders, then the generator and the five
    # losses) or "landmarks" (MediaPipe's face landmark network, frozen: R's heads train on
    # its cached features and the bundle is evaluated on real video)
    f: str = "parser"
    runs: str = "runs/recipe"  # checkpoints of parser, generator, regressor
    bundle: str = "runs/recipe/bundle"  # fp32; the int8 copy goes to <bundle>_int8
    quantize: bool = True  # int8 copy of the bundle, evaluated on the held-out pairs
    # ship the (int8, if quantize) bundle with a completed model card here; "" = don't
    ship: str = ""
    limits: list[str] = field(default_factory=list)  # known limits, written to the card
    blender: str = ""  # a Blender binary for the renders; empty: this Python's bpy module
    # another recipe's config that this one continues (module docstring); "" = none
    start: str = ""
    # a bundle whose regressor the warm-up starts from (ml/export/bundle_weights.py), e.g. the
    # shipped default: training goes on from a model whose checkpoints are gone
    init_bundle: str = ""
    pairs: PairsStage = field(default_factory=PairsStage)
    landmark: LandmarkStage = field(default_factory=LandmarkStage)
    five_losses: FiveLossStage = field(default_factory=FiveLossStage)
    real: RealStage = field(default_factory=RealStage)
    # `--set` overrides passed to each training stage on top of its own config file
    parser: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    # the regressor's supervised warm-up on rendered pairs (the five losses off), then the
    # regressor stage goes on from its checkpoint in the same run folder: give it more steps
    warmup: dict[str, Any] = field(default_factory=dict)
    regressor: dict[str, Any] = field(default_factory=dict)


STAGES = (
    "pairs",
    "eval_pairs",
    "real",
    "pseudo_labels",
    "parser",
    "evaluate_parser",
    "generator",
    "crop_rolls",
    "eval_crop_rolls",
    "warmup",
    "regressor",
    "landmark_regressor",
    "feature_generator",
    "five_losses",
    "evaluate",
    "export",
    "evaluate_bundle",
    "evaluate_real",
    "quantize",
    "evaluate_int8",
    "evaluate_real_int8",
    "ship",
)


# the warm-up: direct supervision on rendered pairs only (the five losses off)
WARMUP = {
    **{f"loss.{k}": 0.0 for k in ("content", "identity", "parameter", "loopback", "adversarial")},
    "loss.supervised": 1.0,
    # the warm-up learns the BatchNorm statistics that the five-loss stage may freeze
    "optim.freeze_bn_stats": False,
}


def _sets(overrides: dict[str, Any]) -> list[str]:
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={_toml_value(v)}")]


def load_start(cfg: RecipeConfig) -> RecipeConfig | None:
    """The recipe that `cfg` continues, or None."""
    if not cfg.start:
        return None
    if not Path(cfg.start).is_file():
        raise RecipeError(f"start: recipe config {cfg.start} does not exist")
    first = load_config(RecipeConfig, cfg.start)
    if first.start:
        raise RecipeError(f"start: {cfg.start} continues {first.start} itself; chain one level")
    if Path(first.runs).resolve() == Path(cfg.runs).resolve():
        raise RecipeError(f"start: {cfg.start} has the same runs folder {cfg.runs}")
    return first


def commands(cfg: RecipeConfig) -> dict[str, list[str]]:
    """The command of every stage, in order."""
    if cfg.f not in F_CHOICES:
        raise RecipeError(f"f = {cfg.f!r}: one of {list(F_CHOICES)}")
    if cfg.f == "landmarks":
        return landmark_commands(cfg)
    py, work, runs = sys.executable, Path(cfg.work), Path(cfg.runs)
    if cfg.init_bundle and cfg.start:
        raise RecipeError(
            "start and init_bundle: a recipe continues a recipe or a bundle, not both"
        )
    first = load_start(cfg)
    # the frozen networks: this recipe's own, or those of the recipe it continues
    nets = Path(first.runs) if first else runs
    render = [cfg.blender, "-b", "-P"] if cfg.blender else [py]
    p = cfg.pairs
    pairs, eval_pairs, real = work / "pairs", work / "pairs_eval", work / "real_faces.npz"
    labels = work / "real_labels.npz"  # MediaPipe pseudo-labels of the real frames

    def train(stage: str, extra: dict[str, Any]) -> list[str]:
        base = {"data.pairs": str(pairs), "run.dir": str(runs / stage)}
        return [py, "-m", f"ml.train.{stage}", "--config", f"ml/configs/{stage}.toml"] + _sets(
            {**base, **extra}
        )

    regressor_sets = {
        "data.real": str(real),
        "frozen.generator": str(nets / "generator" / "last.pt"),
        "frozen.parser": str(nets / "parser" / "last.pt"),
        **cfg.regressor,
    }
    recovered, continues = work / "from_bundle", []
    if cfg.init_bundle:
        from ml.export.bundle_weights import SOURCE_CARD  # here: it imports torch and onnx

        continues = ["--continues", str(recovered / SOURCE_CARD)]
        # its BatchNorm layers are folded (identities): no stage may update their statistics
        regressor_sets["optim.freeze_bn_stats"] = True
    warmup = {**regressor_sets, **WARMUP, **cfg.warmup}
    if first:
        warmup["run.init"] = str(Path(first.runs) / "regressor" / "last.pt")
    if cfg.init_bundle:
        warmup["run.init"] = str(recovered / "regressor.pt")
        warmup["optim.freeze_bn_stats"] = True
    if cfg.real.split:
        real_cmd = [py, "-m", "ml.data.real_face_set", "export", "--split", cfg.real.split]
        real_cmd += ["--clips", *cfg.real.clips] if cfg.real.clips else []
    else:
        real_cmd = [py, "-m", "ml.data.real_faces", "--inputs", *cfg.real.inputs]
    real_cmd += ["--out", str(real), "--size", str(p.size), "--step", str(cfg.real.step)]
    checkpoints = ["--regressor", str(runs / "regressor" / "last.pt")]
    checkpoints += ["--parser", str(nets / "parser" / "last.pt")]
    int8 = f"{cfg.bundle}_int8"
    quantize = {
        "quantize": [py, "-m", "ml.export.quantize", "--bundle", cfg.bundle, "--pairs", str(pairs)]
        + ["--out", int8],
        "evaluate_int8": [py, "-m", "ml.eval.regressor", "--bundle", int8]
        + ["--pairs", str(eval_pairs)],
    }
    return {
        # first, so that no other stage reruns it: shipping into init_bundle (the add-on's
        # default) does not change what a rerun of this recipe starts from
        **(
            {
                "recover": [py, "-m", "ml.export.bundle_weights", "--bundle", cfg.init_bundle]
                + ["--out", str(recovered)]
            }
            if cfg.init_bundle
            else {}
        ),
        "pairs": _render_cmd(cfg, pairs, p.count, p.seed, False),
        "eval_pairs": _render_cmd(cfg, eval_pairs, p.eval_count, p.eval_seed, True),
        "real": real_cmd,
        "pseudo_labels": [py, "-m", "ml.data.pseudo_labels", "--inputs", *cfg.real.inputs]
        + ["--out", str(labels), "--size", str(p.size), "--step", str(cfg.real.step)],
        **(
            {}
            if first
            else {"parser": train("parser", {"data.real_labels": str(labels), **cfg.parser})}
        ),
        "evaluate_parser": [py, "-m", "ml.eval.parser", "--checkpoint"]
        + [str(nets / "parser" / "last.pt"), "--pairs", str(eval_pairs), "--holdout-every", "1"]
        + ["--real-labels", str(labels)],
        **({} if first else {"generator": train("generator", cfg.generator)}),
        **(
            {  # the roll each pair's alignment took out (after the stages that need none)
                "crop_rolls": [*render, "ml/blender/crop_rolls.py", "--", "--pairs", str(pairs)],
                "eval_crop_rolls": [
                    *render,
                    "ml/blender/crop_rolls.py",
                    "--",
                    "--pairs",
                    str(eval_pairs),
                ],
            }
            if any(s.get("model.roll_in_crop") for s in (cfg.regressor, cfg.warmup))
            else {}
        ),
        "warmup": train("regressor", warmup),
        "regressor": train("regressor", regressor_sets),
        "evaluate": [py, "-m", "ml.eval.regressor", *checkpoints, "--pairs", str(eval_pairs)],
        "export": [py, "-m", "ml.export.bundle", *checkpoints, "--out", cfg.bundle],
        **(quantize if cfg.quantize else {}),
        **(
            {
                "ship": [
                    py,
                    "-m",
                    "ml.export.model_card",
                    "--bundle",
                    int8 if cfg.quantize else cfg.bundle,
                ]
                + ["--work", str(work), "--runs", str(runs), "--out", cfg.ship]
                + (["--start", first.work, first.runs] if first else [])
                + continues
                + [a for limit in cfg.limits for a in ("--limit", limit)]
            }
            if cfg.ship
            else {}
        ),
    }


def _render_cmd(cfg: RecipeConfig, out: Path, count: int, seed: int, held_out: bool) -> list[str]:
    p = cfg.pairs
    render = [cfg.blender, "-b", "-P"] if cfg.blender else [sys.executable]
    mode = (p.eval_au_mode or p.au_mode) if held_out else p.au_mode
    return [
        *render, "ml/render_pairs.py", "--", "--count", str(count), "--out", str(out),
        "--size", str(p.size), "--seed", str(seed), "--au-mode", mode,
        "--samples", str(p.samples), "--randomize",
    ]  # fmt: skip


def landmark_commands(cfg: RecipeConfig) -> dict[str, list[str]]:
    """The stages with the landmark network as F: pairs and their crop rolls, R's heads on
    F's cached features, the bundle (F and R in one graph), its evaluation on held-out
    renders and on the real-face set's held-out people, int8, ship."""
    if cfg.start or cfg.init_bundle:
        raise RecipeError('f = "landmarks" trains R from nothing: drop start / init_bundle')
    py, work, runs, lm = sys.executable, Path(cfg.work), Path(cfg.runs), cfg.landmark
    render = [cfg.blender, "-b", "-P"] if cfg.blender else [py]
    pairs, eval_pairs = work / "pairs", work / "pairs_eval"
    train = [
        py, "-m", "ml.train.landmark_regressor", "--pairs", str(pairs),
        "--run", str(runs / "landmark_regressor"), "--landmark-model", lm.model,
        "--depth", str(lm.depth), "--width", str(lm.width), "--steps", str(lm.steps),
        "--lr", str(lm.lr), "--inputs", *lm.inputs,
    ]  # fmt: skip
    if lm.group_inputs:
        train += ["--group-inputs"] + [f"{g}={','.join(v)}" for g, v in lm.group_inputs.items()]
    five = cfg.five_losses
    if five.weights:
        from ml.train.landmark_five_losses import WEIGHTS

        unknown = sorted(set(five.weights) - set(WEIGHTS))
        if unknown:
            raise RecipeError(f"five_losses.weights {unknown}: each one of {list(WEIGHTS)}")
    trained = runs / ("five_losses" if five.steps > 0 else "landmark_regressor") / "last.pt"
    real_stages = (
        {
            "feature_generator": [
                py, "-m", "ml.train.feature_generator", "--pairs", str(pairs),
                "--eval-pairs", str(eval_pairs), "--run", str(runs / "feature_generator"),
                "--landmark-model", lm.model, "--steps", str(five.generator_steps),
                "--width", str(five.generator_width), "--depth", str(five.generator_depth),
            ],
            "five_losses": [
                py, "-m", "ml.train.landmark_five_losses",
                "--regressor", str(runs / "landmark_regressor" / "last.pt"),
                "--generator", str(runs / "feature_generator" / "last.pt"),
                "--pairs", str(pairs), "--run", str(runs / "five_losses"),
                "--steps", str(five.steps), "--lr", str(five.lr),
                *[a for k, v in five.weights.items() for a in (f"--{k.replace('_', '-')}", str(v))],
                *(["--clips", *cfg.real.clips] if cfg.real.clips else []),
            ],
        }
        if five.steps > 0
        else {}
    )  # fmt: skip
    int8 = f"{cfg.bundle}_int8"
    shipped = int8 if cfg.quantize else cfg.bundle

    def evaluate(bundle: str, name: str) -> dict[str, list[str]]:
        return {
            f"evaluate_{name}": [py, "-m", "ml.eval.regressor", "--bundle", bundle]
            + ["--pairs", str(eval_pairs)],
            f"evaluate_real{'' if name == 'bundle' else '_' + name}": [
                py, "-m", "ml.eval.real", "--bundle", bundle, "--write-card",
                "--out", str(runs / f"eval_real_{name}.json"),
            ],
        }  # fmt: skip

    return {
        "pairs": _render_cmd(cfg, pairs, cfg.pairs.count, cfg.pairs.seed, False),
        "eval_pairs": _render_cmd(cfg, eval_pairs, cfg.pairs.eval_count, cfg.pairs.eval_seed, True),
        "crop_rolls": [*render, "ml/blender/crop_rolls.py", "--", "--pairs", str(pairs)],
        "eval_crop_rolls": [*render, "ml/blender/crop_rolls.py", "--", "--pairs", str(eval_pairs)],
        "landmark_regressor": train,
        **real_stages,
        "export": [py, "-m", "ml.export.bundle", "--regressor", str(trained), "--out", cfg.bundle],
        **evaluate(cfg.bundle, "bundle"),
        **(
            {
                "quantize": [py, "-m", "ml.export.quantize", "--bundle", cfg.bundle]
                + ["--pairs", str(pairs), "--out", int8],
                **evaluate(int8, "int8"),
            }
            if cfg.quantize
            else {}
        ),
        **(
            {
                "ship": [py, "-m", "ml.export.model_card", "--bundle", shipped, "--work"]
                + [str(work), "--runs", str(runs), "--out", cfg.ship]
                + [a for limit in cfg.limits for a in ("--limit", limit)]
            }
            if cfg.ship
            else {}
        ),
    }


def _add_seconds(path: Path, stage: str, seconds: float) -> None:
    """Wall time per stage, summed over runs (a resumed stage adds its new time)."""
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[stage] = round(times.get(stage, 0.0) + seconds, 1)
    path.write_text(json.dumps(times, indent=2) + "\n")


def run(cfg: RecipeConfig, only: list[str] | None = None, force: bool = False) -> bool:
    """Run the stages in order, skipping those whose marker holds the same command; first
    the recipe `cfg` continues, if any (`only` and `force` apply to `cfg`'s own stages).
    Returns whether any stage ran."""
    first = load_start(cfg)
    # a stage that reran makes every later stage run again, the continued recipe's included
    upstream_ran = run(first) if first else False
    marks = Path(cfg.work) / "stages"
    marks.mkdir(parents=True, exist_ok=True)
    (Path(cfg.work) / "recipe.toml").write_text(dump_toml(cfg))
    for name, cmd in commands(cfg).items():
        if only and name not in only:
            continue
        mark, line = marks / f"{name}.done", shlex.join(cmd)
        same = mark.exists() and mark.read_text().strip() == line
        if same and not (force or upstream_ran):
            log.info("stage %s: done before, skipped", name)
            continue
        upstream_ran = True
        mark.unlink(missing_ok=True)
        log.info("stage %s: %s", name, line)
        t0 = time.perf_counter()
        ok = subprocess.run(cmd).returncode == 0
        _add_seconds(marks / "seconds.json", name, time.perf_counter() - t0)
        if not ok:
            raise RecipeError(f"stage {name} failed; rerun the recipe to resume. Command: {line}")
        mark.write_text(line + "\n")
    return upstream_ran


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml.recipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="ml/configs/recipe.toml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", nargs="+", choices=STAGES, help="run only these stages")
    ap.add_argument("--force", action="store_true", help="rerun stages marked done")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s recipe: %(message)s")
    cfg = load_config(RecipeConfig, args.config, args.set)
    if args.dry_run:
        first = load_start(cfg)
        for path, stages in ([(cfg.start, first)] if first else []) + [(args.config, cfg)]:
            print(f"# {path}")
            for name, cmd in commands(stages).items():
                print(f"{name}: {shlex.join(cmd)}")
        return 0
    run(cfg, args.only, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.recipe", main))
