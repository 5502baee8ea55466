"""Benchmark: the regressor's supervised warm-up step (the recipe's longest stage) on this
machine, as the recipe trains it and with changes that could make it faster.

    python -m ml.bench.train_regressor [--batch 16 --steps 10 --pairs data/recipe/pairs]

A step is what `ml.train.regressor` does in the warm-up: appearance augmentation of a batch
of rendered pairs, R with its own parser backbone, the group-weighted supervised loss,
backward and Adam. Batches are in memory (rendered pairs from `--pairs` if given, else
random images), so data loading is timed on its own row. Medians of timed steps after
warm-up steps; the baseline is the step as trained, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

from ml.data.augment import AugmentConfig, appearance
from ml.data.pairs_dataset import PairsDataset
from ml.data.sampling import sample_params
from ml.losses.supervised import supervised_loss
from ml.nets.regressor import Regressor, RegressorConfig
from rigs.spec import RigSpec, load_spec

GROUPS = {"au": 4.0, "pose": 1.0, "gaze": 0.5, "identity": 0.25}  # as the recipes' warm-up


def _median(fn: Callable[[], object], steps: int, warmup: int) -> float:
    times = []
    for i in range(steps + warmup):
        t = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _batch(
    args: argparse.Namespace, spec: RigSpec
) -> tuple[torch.Tensor, torch.Tensor, Callable[[], object] | None]:
    """(images, params, a function that loads one batch from disk, or None)."""
    if args.pairs:
        pairs = PairsDataset(args.pairs, "train", 20)
        items = [pairs[i % len(pairs)] for i in range(args.batch)]
        images = torch.stack([it["image"] for it in items])
        params = torch.stack([it["params"] for it in items])
        return images, params, lambda: [pairs[i % len(pairs)] for i in range(args.batch)]
    size = RegressorConfig().image_size
    params = torch.stack([torch.from_numpy(sample_params(spec, 0, i)) for i in range(args.batch)])
    return torch.rand(args.batch, 3, size, size), params, None


def _step_fn(
    model: Regressor,
    images: torch.Tensor,
    params: torch.Tensor,
    memory_format: torch.memory_format = torch.contiguous_format,
    forward: Callable | None = None,
    fused: bool | None = None,
) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused)
    cfg, g = AugmentConfig(flip_p=0.0), torch.Generator().manual_seed(0)
    net = model if forward is None else forward

    def step() -> None:
        x = appearance(images, cfg, g).contiguous(memory_format=memory_format)
        loss, _ = supervised_loss(net(x), params, model, GROUPS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _model(
    spec: RigSpec, memory_format: torch.memory_format = torch.contiguous_format
) -> Regressor:
    torch.manual_seed(0)
    model = Regressor(spec, RegressorConfig(backbone=True, roll_in_crop=True))
    model.to(memory_format=memory_format)  # type: ignore[call-overload]  # Module.to takes it
    return model.train()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml.bench.train_regressor")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiles)")
    ap.add_argument("--pairs", help="a rendered pairs folder (else random images)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    args = ap.parse_args(argv)
    spec = load_spec()
    images, params, load = _batch(args, spec)
    cfg, g = AugmentConfig(flip_p=0.0), torch.Generator().manual_seed(0)

    def step(cl: bool = False, fused: bool | None = None) -> Callable[[], None]:
        fmt = torch.channels_last if cl else torch.contiguous_format
        return _step_fn(_model(spec, fmt), images, params, fmt, fused=fused)

    timed: list[tuple[str, Callable[[], object], int]] = [
        ("step as trained (baseline)", step(), args.warmup),
        ("  of which appearance augmentation", lambda: appearance(images, cfg, g), args.warmup),
        *(
            [("  loading the batch from disk (not in the step)", load, 1)]
            if load is not None
            else []
        ),
        ("channels_last", step(cl=True), args.warmup),
        ("fused Adam", step(fused=True), args.warmup),
        ("channels_last + fused Adam", step(cl=True, fused=True), args.warmup),
    ]
    rows = [(name, _median(fn, args.steps, warm)) for name, fn, warm in timed]
    if not args.no_compile:
        model = _model(spec)
        compiled = _step_fn(model, images, params, forward=torch.compile(model))
        try:
            rows.append(("torch.compile (inductor)", _median(compiled, args.steps, args.warmup)))
        except Exception as e:  # a compiler failure is a result too: print it, keep the rest
            print(f"torch.compile (inductor) failed: {type(e).__name__}: {str(e)[:200]}")
    base = rows[0][1]
    head = f"batch {args.batch}, {torch.get_num_threads()} threads, cpu, torch {torch.__version__}"
    print(f"\n| {head} | median s/step | steps/s | ratio to baseline |")
    print("| --- | --- | --- | --- |")
    for name, s in rows:
        print(f"| {name} | {s:.3f} | {1 / s:.2f} | {s / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
