"""Recover a trainable regressor from a model bundle's ONNX graph, so that training can go
on from a shipped model when its checkpoints are gone (`run.init`).

    python -m ml.export.bundle_weights --bundle au_retarget_addon/models/default \
        --out runs/from_default

writes `regressor.pt` (kind regressor, the card's model config and step) and `parser.pt`
(R's own parser backbone, kind parser; for `--parser` of evaluation and export and for
`frozen.parser` of a supervised warm-up, not as the five-loss stage's F) into `--out`.

Only a regressor with its own backbone (`model.backbone`) can be recovered: its graph holds
every weight R uses. Export folds each BatchNorm into the convolution before it, so the
recovered convolution carries the folded weight and bias, and its BatchNorm is the identity
(mean 0, variance 1 - eps, scale 1, shift = the folded bias): the same function in eval
mode. Such a checkpoint trains only with `optim.freeze_bn_stats = true` (training refuses
otherwise); with batch statistics the identity BatchNorm would renormalise every layer. An
int8 bundle gives its dequantised weights: the int8 model's own weights, not the fp32 ones
it was quantised from. Modules the graph does not use (segmentation heads that no output
needs) keep their fresh initial weights and are listed in the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from ml.errors import MLError, exit_on_error
from ml.nets.regressor import FaceToParams, Regressor, RegressorConfig
from ml.train.checkpoint import save_checkpoint
from rigs.spec import RigSpec, load_spec

CARD, MODEL = "model_card.json", "model.onnx"
SOURCE_CARD = "source_card.json"  # the bundle's card, copied beside the recovered weights


class BundleWeightsError(MLError, RuntimeError):
    """A bundle's weights cannot be mapped onto the regressor (names the bundle and node)."""


def _values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every constant tensor of the graph: initializers, and DequantizeLinear outputs of
    constant inputs evaluated ((q - zero_point) * scale, per axis)."""
    vals = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in vals:
            continue
        q = vals[node.input[0]].astype(np.float64)
        scale = vals[node.input[1]].astype(np.float64)
        zero = vals[node.input[2]].astype(np.float64) if len(node.input) > 2 else 0.0
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1 and q.ndim > 1:  # per channel along `axis`
            shape = [1] * q.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = np.reshape(zero, shape) if np.ndim(zero) else zero
        vals[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    return vals


def _module_for(node: str, names: list[str]) -> str | None:
    """The module an exported node ("/parser/net/cp/resnet/layer1/layer1.0/conv1/Conv") came
    from: its scope's names ("layer1.0" under "layer1" adds "0") must be the module's name
    parts, exactly, or else in order with some parts (containers that are not called, like a
    ModuleDict) left out. None unless exactly one module fits."""
    parts: list[str] = []
    for comp in node.strip("/").split("/")[:-1]:
        pieces = comp.split(".")
        # the longest head of this scope that repeats the tail of the names so far
        k = max(j for j in range(len(pieces)) if j == 0 or parts[-j:] == pieces[:j])
        parts.extend(pieces[k:])

    def fits(name: str) -> bool:
        mod = name.split(".")
        if mod[0] != parts[0] or mod[-1] != parts[-1]:
            return False
        it = iter(mod)
        return all(p in it for p in parts)

    if ".".join(parts) in names:
        return ".".join(parts)
    hits = [n for n in names if fits(n)]
    return hits[0] if len(hits) == 1 else None


def _conv_bn_pairs(model: nn.Module, size: int) -> dict[str, str]:
    """conv module name -> the BatchNorm that takes its output directly, by a traced
    forward pass."""
    produced: dict[int, str] = {}
    pairs: dict[str, str] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(
                mod.register_forward_hook(
                    lambda m, i, o, name=name: produced.__setitem__(id(o), name)
                )
            )
        elif isinstance(mod, nn.BatchNorm2d):
            handles.append(
                mod.register_forward_pre_hook(
                    lambda m, i, name=name: (
                        pairs.__setitem__(produced[id(i[0])], name)
                        if id(i[0]) in produced
                        else None
                    )
                )
            )
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return pairs


def recover(bundle: Path, spec: RigSpec) -> tuple[Regressor, dict[str, Any]]:
    """(the regressor with the bundle's weights, facts for the checkpoint)."""
    for need in (CARD, MODEL):
        if not (bundle / need).is_file():
            raise BundleWeightsError(f"bundle {bundle} has no {need}")
    card = json.loads((bundle / CARD).read_text())
    if card.get("spec_hash") != spec.hash():
        raise BundleWeightsError(
            f"bundle {bundle} was made for rig spec {card.get('spec_hash')}, "
            f"this rig is {spec.hash()}"
        )
    if "feature_extractor" in card:
        raise BundleWeightsError(
            f"bundle {bundle}: its regressor reads {card['feature_extractor'].get('network')} "
            "(a landmark-F bundle); retrain it with `python -m ml.train.landmark_regressor`, "
            "which fits its heads in seconds on cached features"
        )
    try:
        model_cfg = tomllib.loads(card["training_config"])["model"]
    except (KeyError, tomllib.TOMLDecodeError) as exc:
        raise BundleWeightsError(f"bundle {bundle}: its card has no model config ({exc})") from exc
    cfg = RegressorConfig(**model_cfg)
    if not cfg.backbone:
        raise BundleWeightsError(
            f"bundle {bundle}: its regressor reads a frozen parser's features "
            "(model.backbone = false), whose training weights the graph does not identify"
        )
    torch.manual_seed(0)
    reg = Regressor(spec, cfg)
    net = FaceToParams(nn.Identity(), reg)
    modules = dict(net.named_modules())
    layers = [n for n, m in modules.items() if isinstance(m, nn.Conv2d | nn.Linear)]
    bn_of = _conv_bn_pairs(net, cfg.image_size)
    graph = onnx.load(str(bundle / MODEL)).graph
    vals = _values(graph)
    done: set[str] = set()
    with torch.no_grad():
        for node in graph.node:
            if node.op_type not in ("Conv", "Gemm"):
                continue
            name = _module_for(node.name, layers)
            if name is None:
                raise BundleWeightsError(f"bundle {bundle}: node {node.name} fits no one layer")
            if name in done:
                raise BundleWeightsError(f"bundle {bundle}: layer {name} appears twice")
            mod = modules[name]
            w = vals.get(node.input[1])
            b = vals.get(node.input[2]) if len(node.input) > 2 else None
            if w is None or tuple(w.shape) != tuple(mod.weight.shape):
                raise BundleWeightsError(
                    f"bundle {bundle}: node {node.name} has weight "
                    f"{None if w is None else w.shape}, layer {name} needs "
                    f"{tuple(mod.weight.shape)}"
                )
            if node.op_type == "Gemm" and any(
                a.name == "transB" and a.i == 0 for a in node.attribute
            ):
                raise BundleWeightsError(f"bundle {bundle}: node {node.name} is not transB")
            mod.weight.copy_(torch.from_numpy(w))
            bias = torch.zeros(mod.weight.shape[0]) if b is None else torch.from_numpy(b)
            if name in bn_of:
                bn = modules[bn_of[name]]
                assert isinstance(bn, nn.BatchNorm2d)
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
                assert bn.running_mean is not None and bn.running_var is not None
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                done.add(bn_of[name])
            elif mod.bias is not None:
                mod.bias.copy_(bias)
            elif b is not None and np.abs(b).max() > 0:
                raise BundleWeightsError(
                    f"bundle {bundle}: node {node.name} has a bias, layer {name} has none "
                    "and no BatchNorm after it"
                )
            done.add(name)
    unused = sorted(
        n
        for n, m in modules.items()
        if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d) and n not in done
    )
    facts = {
        "from_bundle": str(bundle),
        "bn_folded": True,
        "not_in_graph": unused,
        "bundle_step": int(card.get("step", 0)),
        "quantization": card.get("quantization", {}).get("method", "none"),
    }
    return reg, {"card": card, "extra": facts, "config": card["training_config"]}


def write(bundle: Path, out: Path, spec: RigSpec) -> tuple[Path, Path]:
    """Write out/regressor.pt, out/parser.pt and the bundle's card (SOURCE_CARD, for a
    model card that states what training went on from); returns the two checkpoints."""
    reg, info = recover(bundle, spec)
    assert reg.backbone is not None
    step = info["extra"]["bundle_step"]
    regressor, parser = out / "regressor.pt", out / "parser.pt"
    save_checkpoint(
        regressor, "regressor", reg, reg.cfg, step, info["config"], spec, extra=info["extra"]
    )
    save_checkpoint(
        parser, "parser", reg.backbone, reg.backbone.cfg, step, "", spec, extra=info["extra"]
    )
    (out / SOURCE_CARD).write_text(json.dumps(info["card"], indent=2) + "\n")
    return regressor, parser


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml.export.bundle_weights", description=__doc__)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    regressor, parser = write(args.bundle, args.out, load_spec())
    print(f"wrote {regressor} and {parser}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.export.bundle_weights", main))
