"""Evaluate a generator checkpoint on held-out pairs and per-parameter sensitivity.

    python -m ml.eval.generator --checkpoint runs/generator/last.pt --pairs data/pairs \
        --sensitivity data/sensitivity.npz

Prints L1, PSNR and SSIM on the held-out split, and for every AU, pose and gaze
parameter the correlation between the generator's change image and the renderer's.
Writes `eval.json` and `eval.md` beside the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ml.data.pairs_dataset import PairsDataset
from ml.device import pick_device
from ml.errors import exit_on_error
from ml.train.checkpoint import load_checkpoint
from ml.train.generator import fit_size
from rigs.spec import load_spec


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004; 11x11 Gaussian, sigma 1.5), images in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    w = _gauss().to(x).repeat(x.shape[1], 1, 1, 1)
    conv = lambda t: F.conv2d(t, w, groups=x.shape[1])  # noqa: E731
    mx, my = conv(x), conv(y)
    vx, vy, cxy = conv(x * x) - mx**2, conv(y * y) - my**2, conv(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = (x - y).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


@torch.no_grad()
def heldout_metrics(
    model: torch.nn.Module, data: PairsDataset, size: int, device: torch.device, batch: int = 32
) -> dict[str, float]:
    l1, ps, ss = [], [], []
    for start in range(0, len(data), batch):
        items = [data[i] for i in range(start, min(start + batch, len(data)))]
        real = fit_size(torch.stack([it["image"] for it in items]), size).to(device)
        fake = model(torch.stack([it["params"] for it in items]).to(device)).float()
        l1.append((fake - real).abs().flatten(1).mean(dim=1))
        ps.append(psnr(fake, real))
        ss.append(ssim(fake, real))
    return {
        "pairs": len(data),
        "l1": float(torch.cat(l1).mean()),
        "psnr_db": float(torch.cat(ps).mean()),
        "ssim": float(torch.cat(ss).mean()),
    }


@torch.no_grad()
def sensitivity(
    model: torch.nn.Module, path: Path, size: int, device: torch.device
) -> dict[str, float]:
    """Pearson r between generator and renderer change images, per parameter."""
    z = np.load(path)
    images = torch.from_numpy(z["images"]).float().div(255)  # (B, P, 2, S, S, 3)
    params = torch.from_numpy(z["params"])  # (B, P, 2, D)
    b, p = params.shape[:2]
    real = fit_size(images.flatten(0, 2).permute(0, 3, 1, 2), size).view(b, p, 2, 3, size, size)
    fake = model(params.flatten(0, 2).to(device)).float().cpu().view(b, p, 2, 3, size, size)
    d_real = (real[:, :, 1] - real[:, :, 0]).transpose(0, 1).flatten(1)  # (P, B*3*S*S)
    d_fake = (fake[:, :, 1] - fake[:, :, 0]).transpose(0, 1).flatten(1)
    d_real = d_real - d_real.mean(dim=1, keepdim=True)
    d_fake = d_fake - d_fake.mean(dim=1, keepdim=True)
    r = (d_real * d_fake).sum(1) / (d_real.norm(dim=1) * d_fake.norm(dim=1)).clamp_min(1e-12)
    return {str(n): float(v) for n, v in zip(z["names"], r, strict=True)}


def _markdown(metrics: dict, sens: dict[str, float]) -> str:
    lines = [
        "| held-out pairs | L1 | PSNR (dB) | SSIM |",
        "| --- | --- | --- | --- |",
        f"| {metrics['pairs']} | {metrics['l1']:.4f} | {metrics['psnr_db']:.2f} | "
        f"{metrics['ssim']:.4f} |",
    ]
    if sens:
        lines += ["", "| parameter | change-image correlation |", "| --- | --- |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in sens.items()]
        lines += [f"| mean | {np.mean(list(sens.values())):.3f} |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.eval.generator", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--holdout-every", type=int, default=20)
    ap.add_argument(
        "--sensitivity", type=Path, default=None, help="from ml/blender/render_sensitivity.py"
    )
    args = ap.parse_args(argv)
    device = pick_device()
    model, ckpt = load_checkpoint(args.checkpoint, load_spec(), device)
    model.to(device).eval()
    size = ckpt["model_config"]["image_size"]
    data = PairsDataset(args.pairs, "heldout", args.holdout_every)
    metrics = heldout_metrics(model, data, size, device)
    sens = sensitivity(model, args.sensitivity, size, device) if args.sensitivity else {}
    table = _markdown(metrics, sens)
    print(table)
    out = args.checkpoint.parent
    (out / "eval.json").write_text(
        json.dumps({"step": ckpt["step"], **metrics, "sensitivity": sens}, indent=2)
    )
    (out / "eval.md").write_text(f"Generator at step {ckpt['step']}\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.eval.generator", main))
