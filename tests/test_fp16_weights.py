"""Weights stored in half precision only where fp16 holds them exactly: the graph's outputs
stay the same bit for bit under onnxruntime and the file shrinks."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto

from ml.export.fp16_weights import halve_exact_weights


def test_exact_weights_are_halved_and_outputs_do_not_change(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3), torch.nn.ReLU(), torch.nn.Conv2d(32, 8, 1))
    with torch.no_grad():  # the first conv holds fp16 values, the second does not
        net[0].weight.copy_(net[0].weight.half().float())
        net[2].weight.add_(1e-6)
    path = tmp_path / "m.onnx"
    x = torch.rand(2, 3, 16, 16)
    torch.onnx.export(net, (x,), str(path), input_names=["image"], dynamo=False)
    before_size = path.stat().st_size
    before = ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]
    halved, kept = halve_exact_weights(path)
    after = ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]
    assert np.array_equal(before, after)
    types = {i.name: i.data_type for i in onnx.load(str(path)).graph.initializer}
    assert sum(t == TensorProto.FLOAT16 for t in types.values()) == halved >= 1
    assert kept >= 1  # the second conv's weight stays fp32
    assert path.stat().st_size < before_size
