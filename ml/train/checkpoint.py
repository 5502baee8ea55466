"""Checkpoints that rebuild their model: state, optimiser, model config, step, resolved
config and rig spec hash. One loader serves training, evaluation and export."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ml.errors import MLError
from ml.nets.feature_generator import FeatureGenerator, FeatureGeneratorConfig
from ml.nets.generator import Generator, GeneratorConfig
from ml.nets.landmark_regressor import LandmarkRegressor, LandmarkRegressorConfig
from ml.nets.parser.bisenet import ParserConfig
from ml.nets.parser.model import FaceParser
from ml.nets.regressor import Regressor, RegressorConfig
from rigs.spec import RigSpec

MODELS: dict[str, tuple[type, type]] = {
    "generator": (Generator, GeneratorConfig),
    "parser": (FaceParser, ParserConfig),
    "regressor": (Regressor, RegressorConfig),
    "landmark_regressor": (LandmarkRegressor, LandmarkRegressorConfig),
    "feature_generator": (FeatureGenerator, FeatureGeneratorConfig),
}


class CheckpointError(MLError, RuntimeError):
    """A checkpoint is missing, corrupt or made for another rig (names the file)."""


def save_checkpoint(
    path: Path,
    kind: str,
    model: torch.nn.Module,
    model_cfg: Any,
    step: int,
    config: str,
    spec: RigSpec,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write atomically (temp file, then rename): a kill never leaves a broken checkpoint."""
    state = {
        "kind": kind,
        "model": model.state_dict(),
        "model_config": dataclasses.asdict(model_cfg),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "config": config,
        "spec_hash": spec.hash(),
        "extra": extra or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    torch.save(state, part)
    part.replace(path)


def load_checkpoint(
    path: str | Path, spec: RigSpec, map_location: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model saved at `path`; returns (model, the whole checkpoint dict)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if ckpt.get("spec_hash") != spec.hash():
        raise CheckpointError(
            f"checkpoint {path} was made for rig spec {ckpt.get('spec_hash')}, "
            f"this rig is {spec.hash()}"
        )
    if ckpt.get("kind") not in MODELS:
        raise CheckpointError(f"checkpoint {path} holds unknown model kind {ckpt.get('kind')!r}")
    model_cls, cfg_cls = MODELS[ckpt["kind"]]
    model = model_cls(spec, cfg_cls(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model, ckpt
