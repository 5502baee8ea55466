"""Stage configs: TOML, command-line overrides, round trip, errors that name the key."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml.config import ConfigError, dump_toml, load_config


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    amp: bool = True


@dataclass
class Outer:
    name: str = "run"
    opt: Inner = field(default_factory=Inner)


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('name = "a"\n[opt]\nlr = 0.5\n')
    cfg = load_config(Outer, f, ["opt.steps=7", "opt.amp=false", "name=data/pairs"])
    assert cfg == Outer("data/pairs", Inner(0.5, 7, False))


def test_resolved_toml_round_trips(tmp_path):
    cfg = load_config(Outer, None, ["opt.lr=2e-4"])
    f = tmp_path / "resolved.toml"
    f.write_text(dump_toml(cfg))
    assert load_config(Outer, f) == cfg


@pytest.mark.parametrize(
    "override,match",
    [
        ("opt.nope=1", "unknown key"),
        ("opt.steps=abc", "opt.steps"),
        ("novalue", "key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(Outer, None, [override])


def test_stage_configs_round_trip(tmp_path):
    from ml.train.generator import TrainGeneratorConfig
    from ml.train.parser import TrainParserConfig
    from ml.train.regressor import TrainRegressorConfig

    configs = Path(__file__).resolve().parents[1] / "ml" / "configs"
    for cls, path in (
        (TrainRegressorConfig, configs / "regressor.toml"),
        (TrainRegressorConfig, configs / "experiments" / "continue_default.toml"),
        (TrainParserConfig, configs / "parser.toml"),
        (TrainGeneratorConfig, configs / "generator.toml"),
    ):
        cfg = load_config(cls, path, ["run.seed=3"])
        f = tmp_path / "resolved.toml"
        f.write_text(dump_toml(cfg))
        assert load_config(cls, f) == cfg


def test_recipe_configs_round_trip_with_dotted_override_keys(tmp_path):
    # a recipe's stage tables hold `--set` keys such as "optim.steps": one key each, which
    # the written record must keep quoted to read back the same (a continued recipe reads it)
    from ml.recipe import RecipeConfig

    configs = Path(__file__).resolve().parents[1] / "ml" / "configs"
    for path in sorted(configs.rglob("recipe*.toml")):
        cfg = load_config(RecipeConfig, path)
        if cfg.f == "landmarks":  # R's sub-networks and what each reads, a nested table
            assert cfg.landmark.group_inputs["au"] == ["aligned", "parts"], path
        else:
            assert "optim.steps" in cfg.warmup, path
        f = tmp_path / "resolved.toml"
        f.write_text(dump_toml(cfg))
        assert load_config(RecipeConfig, f) == cfg, path
