"""Benchmark: generator training throughput (images per second) on this machine.

    python -m ml.bench.train_generator [--size 128 --batch 16 --steps 10]

Times full optimiser steps (forward, loss, backward, Adam) on in-memory batches, so data
loading is excluded; the baseline is the same step with the L1 loss alone, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from ml.data.sampling import sample_params
from ml.device import pick_device
from ml.losses.perceptual import PerceptualLoss
from ml.nets.generator import Generator, GeneratorConfig
from ml.nets.vgg import DEFAULT_PATH, load_vgg16
from rigs.spec import load_spec


def _median_step(model, opt, params, target, perc, steps: int) -> float:
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        fake = model(params)
        loss = F.l1_loss(fake, target)
        if perc is not None:
            loss = loss + perc(fake, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:  # warm-up steps are not timed
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml.bench.train_generator")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args(argv)
    device = pick_device()
    spec = load_spec()
    torch.manual_seed(0)
    model = Generator(spec, GeneratorConfig(image_size=args.size)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    params = torch.stack([torch.from_numpy(sample_params(spec, 0, i)) for i in range(args.batch)])
    params, target = (
        params.to(device),
        torch.rand(args.batch, 3, args.size, args.size, device=device),
    )
    perc = PerceptualLoss(load_vgg16(DEFAULT_PATH)).to(device)
    rows = [
        ("L1 only (baseline)", _median_step(model, opt, params, target, None, args.steps)),
        ("L1 + VGG16 perceptual", _median_step(model, opt, params, target, perc, args.steps)),
    ]
    print(
        f"\n| {args.size} px, batch {args.batch}, {torch.get_num_threads()} threads, {device} "
        f"| median s/step | images/s |"
    )
    print("| --- | --- | --- |")
    for name, s in rows:
        print(f"| {name} | {s:.3f} | {args.batch / s:.1f} |")
    print(f"| ratio perceptual / baseline | {rows[1][1] / rows[0][1]:.2f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
