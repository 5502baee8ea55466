"""Store an ONNX graph's weights in half precision where that loses nothing.

Every float32 initializer whose values fp16 holds exactly (MediaPipe's landmark network
ships its weights as fp16, so all of F's do) is stored as fp16 behind a Cast to float32;
the rest stay float32. The graph computes in float32 as before and gives the same outputs
bit for bit: onnxruntime folds the Casts when it loads the graph, so speed is unchanged
and only the file shrinks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def halve_exact_weights(path: Path) -> tuple[int, int]:
    """Rewrite the ONNX file `path` in place; returns (weights halved, weights kept fp32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    halved, kept, casts = 0, 0, []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if value.size < 16 or not np.array_equal(half.astype(np.float32), value):
            kept += 1
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [init.name], [name], to=TensorProto.FLOAT))
        halved += 1
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return halved, kept
